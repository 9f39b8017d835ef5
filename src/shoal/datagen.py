"""Test and benchmark data: TPC-H via ``tpchgen-cli``, TPC-DS via ``tpcgen-cli``, and the
example "reservations" table.

:func:`ensure_tpch` / :func:`ensure_tpcds` generate (once) the tables at a scale factor into
a cache folder, as one sub-folder of Parquet files per table, ready for
``Connection.register_parquet``. :func:`write_reservations` writes the small, sharded,
deterministic table that the example report in the documentation and tests runs on.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

__all__ = [
    "RESERVATIONS_REPORT_DAY",
    "RESERVATIONS_SCHEMA",
    "TPCDS_TABLES",
    "TPCH_TABLES",
    "ensure_tpcds",
    "ensure_tpch",
    "find_tpchgen",
    "tpcds_tables",
    "tpch_tables",
    "write_reservations",
]

#: The eight TPC-H tables.
TPCH_TABLES: tuple[str, ...] = (
    "lineitem",
    "orders",
    "customer",
    "part",
    "partsupp",
    "supplier",
    "nation",
    "region",
)

#: The 24 TPC-DS tables (``tpcgen-cli`` also writes ``dbgen_version``, which no query reads).
TPCDS_TABLES: tuple[str, ...] = (
    "call_center",
    "catalog_page",
    "catalog_returns",
    "catalog_sales",
    "customer",
    "customer_address",
    "customer_demographics",
    "date_dim",
    "household_demographics",
    "income_band",
    "inventory",
    "item",
    "promotion",
    "reason",
    "ship_mode",
    "store",
    "store_returns",
    "store_sales",
    "time_dim",
    "warehouse",
    "web_page",
    "web_returns",
    "web_sales",
    "web_site",
)

#: Name of the file written into a generated TPC-H folder once it is complete.
COMPLETE_MARKER = ".shoal-complete.json"

_TPCHGEN = "tpchgen-cli"
_TPCGEN = "tpcgen-cli"


# ----------------------------------------------------------------------------- TPC-H


def find_tpchgen(program: str = _TPCHGEN) -> Path:
    """Locate a generator executable (``tpchgen-cli`` unless ``program`` names another):
    beside ``sys.executable`` first, then PATH.

    Raises:
        FileNotFoundError: if it is in neither place (``pip install tpchgen-cli``).
    """
    bindir = Path(sys.executable).parent
    for name in (program, f"{program}.exe"):
        candidate = bindir / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(program)
    if found:
        return Path(found)
    raise FileNotFoundError(
        f"{program} not found beside {sys.executable} or on PATH; "
        f"install it with `pip install {program}`"
    )


def _sf_label(scale_factor: float) -> str:
    """``0.1`` -> ``"0.1"``, ``1.0`` -> ``"1"``, ``10`` -> ``"10"``."""
    if scale_factor <= 0:
        raise ValueError(f"scale factor must be positive, got {scale_factor}")
    return f"{float(scale_factor):g}"


def _table_files(directory: Path) -> list[Path]:
    return sorted(p for p in directory.glob("*.parquet") if p.is_file())


def _is_complete(directory: Path, tables: tuple[str, ...] = TPCH_TABLES) -> bool:
    """True if ``directory`` holds a finished generation (marker plus every table)."""
    if not (directory / COMPLETE_MARKER).is_file():
        return False
    return all(_table_files(directory / name) for name in tables)


@contextlib.contextmanager
def _exclusive_lock(path: Path) -> Iterator[None]:
    """Hold an exclusive advisory lock on ``path`` (a no-op where fcntl is missing)."""
    try:
        import fcntl
    except ImportError:  # pragma: no cover - Windows
        yield
        return
    with open(path, "a+b") as handle:
        fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _to_folder_layout(directory: Path, tables: tuple[str, ...] = TPCH_TABLES) -> None:
    """Move single-file tables (``<table>.parquet``) into ``<table>/<table>.parquet``.

    tpchgen-cli writes ``<table>/<table>.<n>.parquet`` when given ``--parts`` (4.0 does so
    for nation and region too, as a single part), and ``<table>.parquet`` without it; this
    makes every table a folder either way.
    """
    for name in tables:
        single = directory / f"{name}.parquet"
        folder = directory / name
        if single.is_file():
            folder.mkdir(exist_ok=True)
            single.rename(folder / f"{name}.parquet")


def ensure_tpch(scale_factor: float, root: Path, parts: int = 4) -> Path:
    """Generate the TPC-H tables at ``scale_factor`` under ``root`` unless already there.

    Runs ``tpchgen-cli parquet -s SF --parts N --output-dir DIR`` into a temporary folder
    beside the target, writes a completion marker and renames the folder to
    ``root/sf<SF>`` (e.g. ``root/sf0.1``, ``root/sf1``), so an interrupted run never
    looks complete. Concurrent callers serialise on a lock file in ``root``. The data do
    not depend on ``parts``; an existing complete folder is reused whatever its part
    count.

    Args:
        scale_factor: TPC-H scale factor (0.1 is about 30 MB of Parquet, 1 about 350 MB).
        root: cache folder; created if missing.
        parts: number of Parquet files per table (small tables get fewer).

    Returns:
        The folder holding one ``<table>/`` sub-folder of Parquet files per table; see
        :func:`tpch_tables`.
    """
    return _ensure_generated(_TPCHGEN, [], TPCH_TABLES, scale_factor, Path(root), parts)


def ensure_tpcds(scale_factor: float, root: Path, parts: int = 4) -> Path:
    """Generate the TPC-DS tables at ``scale_factor`` under ``root / "tpcds"`` unless there.

    Runs ``tpcgen-cli tpcds parquet -s SF --parts N --output-dir DIR`` the way
    :func:`ensure_tpch` runs its generator (temporary folder, marker, atomic rename, lock),
    into ``root/tpcds/sf<SF>``. Strings are written as ``string_view``; scans read them as
    ``string``.

    Returns:
        The folder holding one ``<table>/`` sub-folder per table; see :func:`tpcds_tables`.
    """
    return _ensure_generated(
        _TPCGEN, ["tpcds"], TPCDS_TABLES, scale_factor, Path(root) / "tpcds", parts
    )


def _ensure_generated(
    program: str,
    subcommand: list[str],
    tables: tuple[str, ...],
    scale_factor: float,
    root: Path,
    parts: int,
) -> Path:
    if parts < 1:
        raise ValueError(f"parts must be >= 1, got {parts}")
    label = _sf_label(scale_factor)
    target = root / f"sf{label}"
    if _is_complete(target, tables):
        return target

    root.mkdir(parents=True, exist_ok=True)
    with _exclusive_lock(root / f".sf{label}.lock"):
        if _is_complete(target, tables):  # another process finished while we waited
            return target
        tmp_prefix = f".sf{label}.tmp-"
        # Under the lock, any temporary folder for this scale factor is a leftover.
        for stale in root.glob(f"{tmp_prefix}*"):
            shutil.rmtree(stale, ignore_errors=True)
        tmp = Path(tempfile.mkdtemp(prefix=tmp_prefix, dir=root))
        try:
            exe = find_tpchgen(program)
            cmd = [
                str(exe),
                *subcommand,
                "parquet",
                "-s",
                label,
                "--parts",
                str(parts),
                "--output-dir",
                str(tmp),
            ]
            started = time.monotonic()
            proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if proc.returncode != 0:
                raise RuntimeError(
                    f"{' '.join(cmd)} failed with exit code {proc.returncode}:\n"
                    f"{proc.stderr.strip() or proc.stdout.strip()}"
                )
            _to_folder_layout(tmp, tables)
            missing = [name for name in tables if not _table_files(tmp / name)]
            if missing:
                raise RuntimeError(f"{' '.join(cmd)} wrote no Parquet files for {missing}")
            version = subprocess.run(
                [str(exe), "--version"], capture_output=True, text=True, check=False
            ).stdout.strip()
            marker = {
                "scale_factor": scale_factor,
                "parts": parts,
                "generator": version or str(exe),
                "seconds": round(time.monotonic() - started, 2),
                "files": {name: len(_table_files(tmp / name)) for name in tables},
            }
            (tmp / COMPLETE_MARKER).write_text(json.dumps(marker, indent=2) + "\n")
            if target.exists():  # incomplete leftover (no marker): replace it
                shutil.rmtree(target)
            os.replace(tmp, target)
        finally:
            if tmp.exists():
                shutil.rmtree(tmp, ignore_errors=True)
    return target


def tpcds_tables(directory: Path) -> dict[str, Path]:
    """Map each of the 24 TPC-DS table names to its data in ``directory``."""
    return _tables_in(directory, TPCDS_TABLES, "TPC-DS")


def tpch_tables(directory: Path) -> dict[str, Path]:
    """Map each of the 8 TPC-H table names to its data in ``directory``.

    A table is the folder ``directory/<table>/`` when present (what :func:`ensure_tpch`
    always produces), else the single file ``directory/<table>.parquet`` (tpchgen-cli
    without ``--parts``).

    Raises:
        FileNotFoundError: if a table is missing.
    """
    return _tables_in(directory, TPCH_TABLES, "TPC-H")


def _tables_in(directory: Path, names: tuple[str, ...], benchmark: str) -> dict[str, Path]:
    directory = Path(directory)
    tables: dict[str, Path] = {}
    for name in names:
        folder = directory / name
        single = directory / f"{name}.parquet"
        if folder.is_dir() and _table_files(folder):
            tables[name] = folder
        elif single.is_file():
            tables[name] = single
        else:
            raise FileNotFoundError(f"{benchmark} table {name!r} not found in {directory}")
    return tables


# ---------------------------------------------------------------------- reservations

#: Schema of the reservations table.
RESERVATIONS_SCHEMA = pa.schema(
    [
        pa.field("reservation_id", pa.int64(), nullable=False),
        pa.field("issuer", pa.string()),
        pa.field("trading_day", pa.date32(), nullable=False),
        pa.field("risk_bucket", pa.int32(), nullable=False),
        pa.field("status", pa.string(), nullable=False),
        pa.field("notional", pa.decimal128(18, 2)),
    ]
)

#: The trading day the example report selects.
RESERVATIONS_REPORT_DAY = dt.date(2026, 3, 2)

_STATUSES = ("open", "closed", "cancelled")
_STATUS_WEIGHTS = (0.55, 0.30, 0.15)
_RISK_WEIGHTS = (0.30, 0.25, 0.20, 0.15, 0.10)  # buckets 1..5
_N_ISSUERS = 300
_NULL_ISSUER_RATE = 0.02
_NULL_NOTIONAL_RATE = 0.01


def _trading_days() -> list[dt.date]:
    """Weekdays from 2026-02-23 to 2026-03-06 (two weeks around the report day)."""
    first = dt.date(2026, 2, 23)
    days = [first + dt.timedelta(days=i) for i in range(12)]
    return [d for d in days if d.weekday() < 5]


def _report_mask(
    day_idx: np.ndarray, risk: np.ndarray, status_idx: np.ndarray, report_day_idx: int
) -> np.ndarray:
    """Rows the example report keeps: the report day, risk bucket >= 4, status open."""
    open_idx = _STATUSES.index("open")
    mask: np.ndarray = (day_idx == report_day_idx) & (risk >= 4) & (status_idx == open_idx)
    return mask


def _make_report_sums_distinct(
    issuer_idx: np.ndarray,
    cents: np.ndarray,
    notional_null: np.ndarray,
    mask: np.ndarray,
    rng: np.random.Generator,
) -> None:
    """Adjust ``cents``/``notional_null`` in place so the report's groups are unambiguous.

    Every issuer group (NULL issuer included) among the report's rows gets at least one
    non-NULL notional, so no SUM is NULL (NULLS FIRST/LAST cannot matter), and all group
    sums become pairwise distinct (no ties under ORDER BY total DESC), by adding cents to
    one row of a tied group until no two sums are equal.
    """
    group = np.where(issuer_idx < 0, _N_ISSUERS, issuer_idx)  # NULL issuer -> own group
    rows_by_group: dict[int, list[int]] = {}
    for row in np.flatnonzero(mask):
        rows_by_group.setdefault(int(group[row]), []).append(int(row))

    for rows in rows_by_group.values():
        if all(notional_null[r] for r in rows):
            notional_null[rows[0]] = False
            cents[rows[0]] = int(rng.integers(100_000, 10_000_000))

    def sums() -> dict[int, int]:
        return {
            g: sum(int(cents[r]) for r in rows if not notional_null[r])
            for g, rows in rows_by_group.items()
        }

    totals = sums()
    while True:
        seen: dict[int, int] = {}
        bumped = False
        for g in sorted(totals):
            total = totals[g]
            if total in seen:
                first_valued = next(r for r in rows_by_group[g] if not notional_null[r])
                cents[first_valued] += 1
                totals[g] = total + 1
                bumped = True
            else:
                seen[total] = g
        if not bumped:
            return


def _decimal_from_cents(cents: np.ndarray, null: np.ndarray, scale: int = 2) -> pa.Array:
    """A decimal128(18, scale) array whose unscaled values are ``cents`` (NULL where set)."""
    values = np.asarray(cents, dtype=np.int64)
    words = np.empty((len(values), 2), dtype=np.int64)
    words[:, 0] = values  # little-endian low 64 bits
    words[:, 1] = np.where(values < 0, -1, 0)  # sign extension
    validity = pa.array(~null).buffers()[1] if null.any() else None
    # Bit-packed booleans from pa.array(bool) share the validity bitmap layout.
    return pa.Array.from_buffers(
        pa.decimal128(18, scale),
        len(values),
        [validity, pa.py_buffer(words.tobytes())],
        null_count=int(null.sum()),
    )


def write_reservations(root: Path, rows: int = 200_000, shards: int = 8, seed: int = 0) -> Path:
    """Write the example "reservations" table as ``shards`` Parquet files.

    Columns: ``reservation_id int64`` (1..rows), ``issuer string`` (a few hundred issuers,
    Zipf-like popularity, about 2% NULL), ``trading_day date32`` (the weekdays of
    2026-02-23..2026-03-06, including the report day 2026-03-02), ``risk_bucket int32``
    (1..5), ``status string`` ('open', 'closed', 'cancelled'), ``notional
    decimal128(18, 2)`` (log-normal around a million, about 1% NULL).

    The output depends only on the arguments (numpy ``default_rng(seed)``). For the
    example report (``trading_day = DATE '2026-03-02' AND risk_bucket >= 4 AND status =
    'open'``, grouped by issuer) the per-issuer sums are pairwise distinct and never NULL,
    so ``ORDER BY total DESC LIMIT n`` has exactly one right answer.

    Args:
        root: parent folder; the table goes to ``root/reservations/`` (replaced if there).
        rows: number of rows.
        shards: number of Parquet files, ``part-00000.parquet`` onwards, holding
            consecutive ranges of ``reservation_id``.
        seed: random seed.

    Returns:
        The folder holding the shards.
    """
    if rows < 1 or shards < 1:
        raise ValueError(f"rows and shards must be >= 1, got rows={rows}, shards={shards}")
    rng = np.random.default_rng(seed)

    days = _trading_days()
    report_day_idx = days.index(RESERVATIONS_REPORT_DAY)
    day_weights = np.ones(len(days))
    day_weights[report_day_idx] = 1.5  # a busy Monday
    day_idx = rng.choice(len(days), size=rows, p=day_weights / day_weights.sum())

    # Zipf-like issuer popularity, with the popularity ranks shuffled over the names.
    popularity = 1.0 / np.arange(1, _N_ISSUERS + 1) ** 1.1
    popularity = rng.permutation(popularity)
    issuer_idx = rng.choice(_N_ISSUERS, size=rows, p=popularity / popularity.sum())
    issuer_idx = np.where(rng.random(rows) < _NULL_ISSUER_RATE, -1, issuer_idx)

    risk = rng.choice(np.arange(1, 6, dtype=np.int32), size=rows, p=_RISK_WEIGHTS)
    status_idx = rng.choice(len(_STATUSES), size=rows, p=_STATUS_WEIGHTS)

    cents = np.round(rng.lognormal(mean=np.log(1_000_000.0), sigma=1.0, size=rows) * 100)
    cents = np.clip(cents, 1_000, 10_000_000_000).astype(np.int64)  # 10.00 .. 100M
    notional_null = rng.random(rows) < _NULL_NOTIONAL_RATE

    mask = _report_mask(day_idx, risk, status_idx, report_day_idx)
    _make_report_sums_distinct(issuer_idx, cents, notional_null, mask, rng)

    issuer_names = pa.array([f"ISSUER-{i:03d}" for i in range(_N_ISSUERS)], pa.string())
    issuer = issuer_names.take(pa.array(np.maximum(issuer_idx, 0), mask=issuer_idx < 0))
    epoch = dt.date(1970, 1, 1)
    day_numbers = np.array([(d - epoch).days for d in days], dtype=np.int32)
    trading_day = pa.array(day_numbers[day_idx], pa.int32()).cast(pa.date32())
    status = pa.array(list(_STATUSES), pa.string()).take(pa.array(status_idx))

    table = pa.Table.from_arrays(
        [
            pa.array(np.arange(1, rows + 1, dtype=np.int64)),
            issuer,
            trading_day,
            pa.array(risk, pa.int32()),
            status,
            _decimal_from_cents(cents, notional_null),
        ],
        schema=RESERVATIONS_SCHEMA,
    )

    out = Path(root) / "reservations"
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    bounds = np.linspace(0, rows, shards + 1).round().astype(np.int64)
    for shard in range(shards):
        lo, hi = int(bounds[shard]), int(bounds[shard + 1])
        pq.write_table(table.slice(lo, hi - lo), out / f"part-{shard:05d}.parquet")
    return out
