"""Footer facts: worked out once per footer object, equal to what the footer says."""

from __future__ import annotations

import gc
import os
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from shoal.catalog.sources import parquet_footer
from shoal.physical.operators import footer_facts as ff


def _write(path: Path, values: list[int], row_group_size: int, statistics: bool = True) -> None:
    table = pa.table({"k": pa.array(values, pa.int64()), "s": [str(v) for v in values]})
    pq.write_table(table, path, row_group_size=row_group_size, write_statistics=statistics)


def test_facts_match_the_footer_and_are_made_once(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    _write(path, list(range(100)), 25)
    footer = parquet_footer(str(path))
    facts = ff.footer_facts(footer)
    assert ff.footer_facts(footer) is facts
    assert facts.positions == {"k": 0, "s": 1}
    for rg in range(footer.num_row_groups):
        stats = footer.row_group(rg).column(0).statistics
        assert facts.min_max(rg, 0) == (stats.min, stats.max) == (rg * 25, rg * 25 + 24)


def test_a_new_file_version_gets_new_facts(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    _write(path, list(range(10)), 5)
    first = ff.footer_facts(parquet_footer(str(path)))
    assert first.min_max(1, 0) == (5, 9)
    _write(path, list(range(100, 130)), 10)
    # A different size and mtime: the footer cache reads the new footer.
    os.utime(path, ns=(1, 1))
    second = ff.footer_facts(parquet_footer(str(path)))
    assert second is not first
    assert second.min_max(2, 0) == (120, 129)


def test_no_statistics_is_none_and_facts_go_with_their_footer(tmp_path: Path) -> None:
    path = tmp_path / "t.parquet"
    _write(path, list(range(10)), 5, statistics=False)
    footer = pq.read_metadata(path)  # not cached: dropping it drops the facts
    facts = ff.footer_facts(footer)
    assert facts.min_max(0, 0) is None
    key = id(footer)
    assert key in ff._facts
    del footer
    gc.collect()
    assert key not in ff._facts
