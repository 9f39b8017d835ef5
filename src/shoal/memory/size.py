"""Byte sizes as users write them ("512MiB", "1GiB", 2_000_000) and the default budget."""

from __future__ import annotations

import os
import re

from shoal.errors import UserError

_UNITS = {
    "": 1,
    "b": 1,
    "k": 1 << 10,
    "kb": 1000,
    "kib": 1 << 10,
    "m": 1 << 20,
    "mb": 1000**2,
    "mib": 1 << 20,
    "g": 1 << 30,
    "gb": 1000**3,
    "gib": 1 << 30,
    "t": 1 << 40,
    "tb": 1000**4,
    "tib": 1 << 40,
}
_SIZE = re.compile(r"\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*")

# The budget when none is given: a share of physical memory, leaving the rest to the
# process's own overhead (interpreter, Arrow's allocator) and to everything else.
DEFAULT_SHARE = 0.6


def parse_bytes(value: object, what: str = "memory_limit") -> int:
    """A positive byte count from an int or a string such as ``"512MiB"`` or ``"1.5GB"``.

    Binary units (KiB, MiB, GiB, TiB, and the bare K/M/G/T) are powers of 1024; KB, MB,
    GB, TB are powers of 1000. Anything else is a ``UserError`` naming the value.
    """
    if isinstance(value, bool):
        raise UserError(f"{what} must be a byte count such as '512MiB', got {value!r}")
    if isinstance(value, int):
        n = value
    elif isinstance(value, str):
        m = _SIZE.fullmatch(value)
        unit = _UNITS.get(m.group(2).lower()) if m else None
        if m is None or unit is None:
            raise UserError(
                f"{what} must be a byte count such as '512MiB', '1GiB' or 1000000, got {value!r}"
            )
        n = int(float(m.group(1)) * unit)
    else:
        raise UserError(f"{what} must be a byte count such as '512MiB', got {value!r}")
    if n <= 0:
        raise UserError(f"{what} must be positive, got {value!r}")
    return n


def physical_memory_bytes() -> int | None:
    try:
        return int(os.sysconf("SC_PAGE_SIZE")) * int(os.sysconf("SC_PHYS_PAGES"))
    except (ValueError, OSError, AttributeError):
        return None


def default_memory_limit() -> int:
    """60% of physical memory (4 GiB where the machine does not say)."""
    total = physical_memory_bytes()
    return int(total * DEFAULT_SHARE) if total else 4 << 30
