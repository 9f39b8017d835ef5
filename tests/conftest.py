"""Shared fixtures: TPC-H and TPC-DS data at SF 0.1 and SF 1, and the example reservations
table.

TPC-H (``tpchgen-cli``) and TPC-DS (``tpcgen-cli``) data are generated once into a cache
folder and reused across runs: ``$SHOAL_DATA_DIR`` if set, else ``<repo>/data`` (gitignored).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from support.runtime import runtime_under_test, start_test_ray
from support.tpch import tpch_connection

from shoal.datagen import ensure_tpcds, ensure_tpch, write_reservations

__all__ = ["tpch_connection"]

REPO_ROOT = Path(__file__).resolve().parents[1]


def data_cache_root() -> Path:
    """Where generated TPC-H data is cached: ``$SHOAL_DATA_DIR`` or ``<repo>/data``."""
    override = os.environ.get("SHOAL_DATA_DIR")
    return Path(override) if override else REPO_ROOT / "data"


@pytest.fixture(scope="session")
def data_cache_dir() -> Path:
    """The TPC-H cache folder (see :func:`data_cache_root`)."""
    return data_cache_root()


@pytest.fixture(scope="session")
def tpch_sf01_dir(data_cache_dir: Path) -> Path:
    """TPC-H SF 0.1 (4 parts per table): the folder holding one sub-folder per table."""
    return ensure_tpch(0.1, data_cache_dir)


@pytest.fixture(scope="session")
def tpch_sf1_dir(data_cache_dir: Path) -> Path:
    """TPC-H SF 1 (4 parts per table): the folder holding one sub-folder per table."""
    return ensure_tpch(1, data_cache_dir)


@pytest.fixture(scope="session")
def tpcds_sf01_dir(data_cache_dir: Path) -> Path:
    """TPC-DS SF 0.1 (4 parts where dsdgen splits): one sub-folder per table."""
    return ensure_tpcds(0.1, data_cache_dir)


@pytest.fixture(scope="session")
def tpcds_sf1_dir(data_cache_dir: Path) -> Path:
    """TPC-DS SF 1: one sub-folder per table."""
    return ensure_tpcds(1, data_cache_dir)


@pytest.fixture(scope="session")
def reservations_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The example reservations table: a folder of 8 Parquet shards (200,000 rows)."""
    return write_reservations(tmp_path_factory.mktemp("reservations-data"))


@pytest.fixture(scope="session")
def ray_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """This pytest process's one local Ray (127.0.0.1, no token auth, files under the
    test temp folder, a small object store); stopped when the session ends."""
    from shoal.runtime.ray_session import shutdown_session

    session = start_test_ray(tmp_path_factory.mktemp("ray"))
    yield session
    shutdown_session()


@pytest.fixture(scope="session", autouse=True)
def _runtime_under_test(request: pytest.FixtureRequest) -> None:
    """With ``SHOAL_RUNTIME=ray`` the suites' connections run on Ray: start it first."""
    if runtime_under_test() == "ray":
        request.getfixturevalue("ray_session")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # A run on Ray marks every test it runs, so `-m ray` selects them.
    if runtime_under_test() == "ray":
        for item in items:
            item.add_marker(pytest.mark.ray)
