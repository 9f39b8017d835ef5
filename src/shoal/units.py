"""How byte counts read in messages, EXPLAIN output and pictures ("1.5MiB", "1.5 MiB")."""

from __future__ import annotations


def human_bytes(n: float, spaced: bool = False) -> str:
    """``n`` bytes in binary units, one decimal above bytes; ``spaced`` puts a space
    before the unit (prose and pictures) where EXPLAIN's dense lines do not."""
    sep = " " if spaced else ""
    for unit in ("B", "KiB", "MiB"):
        if abs(n) < 1024:
            return f"{n:.0f}{sep}{unit}" if unit == "B" else f"{n:.1f}{sep}{unit}"
        n /= 1024
    return f"{n:.1f}{sep}GiB"
