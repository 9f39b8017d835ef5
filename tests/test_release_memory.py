"""The end-of-query memory release runs off the caller's thread and leaves no thread behind."""

from __future__ import annotations

import threading
import time

import pytest

from shoal.memory import pool


def _release_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name == "shoal-release-memory"]


def test_requests_while_it_works_fold_into_one_more_pass(monkeypatch: pytest.MonkeyPatch) -> None:
    passes: list[float] = []
    gate = threading.Event()

    def slow_release() -> None:
        passes.append(time.monotonic())
        gate.wait(5)

    monkeypatch.setattr(pool, "release_unused", slow_release)
    releaser = pool._BackgroundRelease()
    releaser.request()
    deadline = time.monotonic() + 5
    while not passes and time.monotonic() < deadline:
        time.sleep(0.005)
    assert len(passes) == 1 and len(_release_threads()) == 1
    for _ in range(5):
        releaser.request()  # while the first pass runs
    gate.set()
    while _release_threads() and time.monotonic() < deadline:
        time.sleep(0.005)
    assert _release_threads() == []
    assert len(passes) == 2


def test_a_query_end_releases_and_the_thread_exits(monkeypatch: pytest.MonkeyPatch) -> None:
    import shoal

    calls: list[int] = []
    monkeypatch.setattr(pool, "release_unused", lambda: calls.append(1))
    con = shoal.connect(partitions=2)
    assert con.sql("SELECT 1 AS x").fetchall() == [(1,)]
    deadline = time.monotonic() + 5
    while (not calls or _release_threads()) and time.monotonic() < deadline:
        time.sleep(0.005)
    assert calls and _release_threads() == []
