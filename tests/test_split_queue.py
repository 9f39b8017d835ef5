"""Scan splits handed out on demand: every split read once, whoever asks first."""

from __future__ import annotations

import threading

from shoal.catalog.sources import Split
from shoal.physical.operators.scan import SplitQueue, assign_splits


def test_concurrent_tasks_draw_every_split_exactly_once() -> None:
    splits = tuple(Split(f"f{i % 3}.parquet", (i,), 100 + i, 1000 + i) for i in range(200))
    queue = SplitQueue(splits, assign_splits(list(splits), 4))
    taken: list[list[Split]] = [[] for _ in range(4)]

    def task(n: int) -> None:
        taken[n].extend(queue.drain())

    threads = [threading.Thread(target=task, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    drawn = [s for share in taken for s in share]
    assert sorted(drawn, key=lambda s: s.row_groups or ()) == sorted(
        splits, key=lambda s: s.row_groups or ()
    )


def test_splits_come_file_by_file_in_row_group_order() -> None:
    splits = (Split("b", (1,), 1, 1), Split("a", (2,), 1, 1), Split("a", (0,), 1, 1))
    queue = SplitQueue(splits, ((0, 1), (2,)))
    assert [(s.path, s.row_groups) for s in queue.drain()] == [
        ("a", (0,)),
        ("a", (2,)),
        ("b", (1,)),
    ]
