"""What scans ask of a Parquet footer, worked out once per footer object.

Every scan task of every query asks the same questions of the same few footers (which
leaf is column ``c``, what are row group ``g``'s min and max of it, which string
columns to read as dictionaries), per row group. Two things made that slow:
``pyarrow.parquet.FileMetaData`` hashes and compares by content, so a
``WeakKeyDictionary`` lookup cost ~30 µs; and each statistics read builds several
Python objects (row group, column chunk, statistics, the values). Over the 22 TPC-H
queries at SF 1 that was ~0.4 s of thread time, all of it holding the GIL.

The facts are keyed by the footer's identity: ``catalog.parquet_footer`` keeps one
footer object per file version, so a new version gets new facts, and the facts go
when their footer is dropped (a weak reference's callback removes them).
"""

from __future__ import annotations

import weakref
from typing import Any

import pyarrow.parquet as pq

MinMax = tuple[Any, Any]


class FooterFacts:
    """One footer's column positions, row-group min/max and dictionary choices.

    Holds a weak reference to its footer (never keeps it alive); each min/max is read
    from the footer on first use. Safe to share between threads: a race computes a
    fact twice and stores the same value.
    """

    def __init__(self, metadata: pq.FileMetaData):
        self._metadata = weakref.ref(metadata)
        schema = metadata.schema
        # Leaf column path → its index in the file's row groups.
        self.positions: dict[str, int] = {
            schema.column(i).path: i for i in range(metadata.num_columns)
        }
        # Wanted string columns → those chosen to be read as dictionaries.
        self.dictionary_choice: dict[tuple[str, ...], list[str]] = {}
        self._min_max: dict[tuple[int, int], MinMax | None] = {}

    def min_max(self, row_group: int, column: int) -> MinMax | None:
        """The row group's (min, max) of leaf ``column`` as Python values; None when
        the footer records none (or values pyarrow cannot convert)."""
        key = (row_group, column)
        try:
            return self._min_max[key]
        except KeyError:
            pass
        metadata = self._metadata()
        found: MinMax | None = None
        if metadata is not None:
            stats = metadata.row_group(row_group).column(column).statistics
            if stats is not None and stats.has_min_max:
                try:
                    found = (stats.min, stats.max)
                except (TypeError, ValueError, NotImplementedError):
                    found = None
        self._min_max[key] = found
        return found


_facts: dict[int, tuple[weakref.ref[pq.FileMetaData], FooterFacts]] = {}


def footer_facts(metadata: pq.FileMetaData) -> FooterFacts:
    """The facts of this footer object (made on first use)."""
    key = id(metadata)
    entry = _facts.get(key)
    if entry is not None and entry[0]() is metadata:
        return entry[1]
    facts = FooterFacts(metadata)

    def forget(_ref: weakref.ref[pq.FileMetaData]) -> None:
        # Runs while the footer is freed, before its id can be reused.
        _facts.pop(key, None)

    _facts[key] = (weakref.ref(metadata, forget), facts)
    return facts


__all__ = ["FooterFacts", "MinMax", "footer_facts"]
