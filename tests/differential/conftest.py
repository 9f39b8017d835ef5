"""Fixtures for the differential tests: the data on disk and shoal connections to it.

* ``diff_data``: the tables written under a session temp dir; ``.tables`` maps
  each name queries use to its Arrow table (what the DuckDB oracle sees).
* ``shoal_connections``: ``get(partitions, broadcast_threshold_bytes=None)`` -> a
  shoal connection with every table registered (one per setting, made on first use).
  ``REPARTITION`` (threshold 0) plans every join it can as a repartitioned join;
  ``BROADCAST`` (a huge threshold) broadcasts every build side it may.
* ``shoal_con``: a connection, parametrized over partitions 1 and 3.

``SHOAL_RETRY_POLICY=task`` runs the whole suite with materialized exchanges
(``make test`` runs it both ways).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
from support.runtime import runtime_kwargs

from .data import Registration, all_tables, materialize, register_tables

PARTITION_COUNTS = (1, 3)
REPARTITION = 0
BROADCAST = 1 << 50
JOIN_MODES = {"bcast": BROADCAST, "repart": REPARTITION}


def retry_policy_under_test() -> str:
    """The retry policy (so the exchange mode) the suite runs under: ``$SHOAL_RETRY_POLICY``."""
    return os.environ.get("SHOAL_RETRY_POLICY", "none")


@dataclass(frozen=True)
class DiffData:
    root: Path
    tables: dict[str, pa.Table]
    registrations: list[Registration]


@pytest.fixture(scope="session")
def diff_data(tmp_path_factory: pytest.TempPathFactory) -> DiffData:
    root = tmp_path_factory.mktemp("differential")
    tables = all_tables()
    registrations = materialize(root, tables)
    return DiffData(root=root, tables=tables, registrations=registrations)


def register_all(con: Any, data: DiffData) -> None:
    """Register every table of ``data`` with a shoal connection."""
    register_tables(con, data.registrations, data.tables)


class _Connections:
    """shoal connections over the differential data, one per distinct set of settings
    (made on first use, closed by the fixture that owns them)."""

    def __init__(self, data: DiffData):
        self.data = data
        self.made: dict[tuple[tuple[str, Any], ...], Any] = {}

    def get(self, partitions: int, **settings: Any) -> Any:
        import shoal  # imported here so a missing engine fails setup, not collection

        given = {k: v for k, v in settings.items() if v is not None}
        key = (("partitions", partitions), *sorted(given.items()))
        if key not in self.made:
            con = shoal.connect(
                partitions=partitions,
                retry_policy=retry_policy_under_test(),
                **runtime_kwargs(),
                **given,
            )
            register_all(con, self.data)
            self.made[key] = con
        return self.made[key]

    def close(self) -> None:
        for con in self.made.values():
            con.close()


@pytest.fixture(scope="session")
def shoal_connections(diff_data: DiffData) -> Iterator[Callable[[int], Any]]:
    """Connections by (partitions, broadcast_threshold_bytes); None: the default."""
    connections = _Connections(diff_data)

    def get(partitions: int, broadcast_threshold_bytes: int | None = None) -> Any:
        return connections.get(partitions, broadcast_threshold_bytes=broadcast_threshold_bytes)

    yield get
    connections.close()


@pytest.fixture(scope="module")
def batch_connections(diff_data: DiffData) -> Iterator[Callable[[int, int | None], Any]]:
    """Connections by (partitions, batch_rows); None keeps the default batch size."""
    connections = _Connections(diff_data)

    def get(partitions: int, batch_rows: int | None) -> Any:
        return connections.get(partitions, batch_rows=batch_rows)

    yield get
    connections.close()


@pytest.fixture(params=PARTITION_COUNTS, ids=lambda p: f"p{p}")
def shoal_con(request: pytest.FixtureRequest, shoal_connections: Callable[[int], Any]) -> Any:
    return shoal_connections(request.param)
