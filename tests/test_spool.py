"""The spool: materialized exchanges of every kind, commits, fencing and clean-up.

Unit level: what producers write (one IPC file + index per attempt) is what each
consumer reads, for hash, broadcast, gather, ordered merge and round-robin, and an
attempt without its index (uncommitted) is never read. Query level: a zombie
attempt that commits after its replacement leaves the answer unchanged, and no
spool file remains after success, failure, timeout or cancel.
"""

from __future__ import annotations

import threading
import time
from concurrent.futures import Future
from pathlib import Path

import pyarrow as pa
import pytest
from support.tpch import assert_matches_answer, query_text, tpch_connection

import shoal
from shoal.errors import QueryCancelledError, QueryTimeoutError, TransientError, WorkerLostError
from shoal.exchange.spool import (
    SpoolInput,
    SpoolWriter,
    create_query_folder,
    read_spooled,
    read_spooled_slice,
    remove_query_folder,
)
from shoal.exchange_spec import ExchangeKind, ExchangeSpec, InputSlice, SortSpec
from shoal.hashing import partition_ids
from shoal.physical.context import Settings
from shoal.runtime.faults import Fault, FaultKind
from shoal.runtime.protocol import TaskDescription, TaskReport
from shoal.runtime.task import TaskServices, run_spooled_task
from shoal.runtime.threads import ThreadExecutor
from shoal.scheduler.materialized import MaterializedRun, TaskBook

SCHEMA = pa.schema([("k", pa.int64()), ("v", pa.string())])


def _batches(producer: int, n: int = 3, rows: int = 50) -> list[pa.RecordBatch]:
    out = []
    for b in range(n):
        start = (producer * n + b) * rows
        keys = list(range(start, start + rows))
        out.append(pa.record_batch([pa.array(keys), pa.array([f"v{k}" for k in keys])], SCHEMA))
    return out


def _spool(tmp_path: Path, spec: ExchangeSpec, producers: int, **kw: object) -> SpoolInput:
    location = create_query_folder(str(tmp_path), "q1")
    files = []
    for p in range(producers):
        writer = SpoolWriter(location, 0, p, 0, spec, SCHEMA)
        batches = _batches(p)
        if spec.kind == ExchangeKind.MERGE:
            # An ordered merge's producers are sorted: make each one descending.
            table = pa.Table.from_batches(batches).sort_by([("k", "descending")])
            batches = table.to_batches(max_chunksize=40)
        for batch in batches:
            writer.write(batch)
        files.append(writer.commit().file)
    return SpoolInput(0, spec, SCHEMA, location, tuple(files))


def _keys(batches: list[pa.RecordBatch]) -> list[int]:
    return [k for b in batches for k in b.column("k").to_pylist()]


ALL_KEYS = sorted(_keys([b for p in range(3) for b in _batches(p)]))


def test_hash_exchange_sends_each_row_to_its_partition(tmp_path: Path) -> None:
    spec = ExchangeSpec(ExchangeKind.HASH, 4, ("k",))
    source = _spool(tmp_path, spec, 3)
    seen: list[int] = []
    for consumer in range(4):
        got = list(read_spooled(source, consumer))
        for batch in got:
            ids = partition_ids([batch.column("k")], 4)
            assert set(ids.tolist()) == {consumer}
        seen += _keys(got)
    assert sorted(seen) == ALL_KEYS


def test_hash_batches_are_written_once_and_read_by_range(tmp_path: Path) -> None:
    """A hash producer writes one IPC batch per batch it made, whatever the partition
    count; a group of destinations reads the rows of each of them, and row ranges of one
    destination exactly those rows of a per-destination read, in its order."""
    spec = ExchangeSpec(ExchangeKind.HASH, 16, ("k",))
    source = _spool(tmp_path, spec, 3)
    for file in source.files:
        with pa.memory_map(file.data_path) as f:
            assert pa.ipc.open_file(f).num_record_batches == 3
    per_destination = [_keys(list(read_spooled(source, d))) for d in range(16)]
    assert sorted(k for keys in per_destination for k in keys) == ALL_KEYS
    grouped = _keys(list(read_spooled_slice(source, InputSlice((3, 4, 5, 6)))))
    assert sorted(grouped) == sorted(k for d in range(3, 7) for k in per_destination[d])
    # Destination 5 as row ranges: producer 0's rows 1..4, then producer 2's from row 2.
    rows = [
        _keys(list(read_spooled(SpoolInput(0, spec, SCHEMA, source.location, (f,)), 5)))
        for f in source.files
    ]
    part = InputSlice((5,), segments=((0, 1, 4), (2, 2, len(rows[2]))))
    assert _keys(list(read_spooled_slice(source, part))) == rows[0][1:4] + rows[2][2:]
    written = [sum(r) for r in zip(*(_written_rows(source, q, 16) for q in range(3)), strict=True)]
    assert written == [len(keys) for keys in per_destination]


def _written_rows(source: SpoolInput, producer: int, n: int) -> list[int]:
    return [
        len(
            _keys(
                list(
                    read_spooled(
                        SpoolInput(
                            0, source.spec, SCHEMA, source.location, (source.files[producer],)
                        ),
                        d,
                    )
                )
            )
        )
        for d in range(n)
    ]


def test_broadcast_gather_round_robin_and_merge(tmp_path: Path) -> None:
    broadcast = _spool(tmp_path / "b", ExchangeSpec(ExchangeKind.BROADCAST, 3), 3)
    for consumer in range(3):
        assert sorted(_keys(list(read_spooled(broadcast, consumer)))) == ALL_KEYS
    gather = _spool(tmp_path / "g", ExchangeSpec(ExchangeKind.GATHER, 1), 3)
    assert sorted(_keys(list(read_spooled(gather, 0)))) == ALL_KEYS
    rr = _spool(tmp_path / "r", ExchangeSpec(ExchangeKind.ROUND_ROBIN, 2), 3)
    parts = [_keys(list(read_spooled(rr, c))) for c in range(2)]
    assert sorted(parts[0] + parts[1]) == ALL_KEYS and parts[0] and parts[1]
    merge_spec = ExchangeSpec(ExchangeKind.MERGE, 1, sort_keys=(SortSpec("k", ascending=False),))
    merged = _keys(list(read_spooled(_spool(tmp_path / "m", merge_spec, 3), 0)))
    assert merged == sorted(ALL_KEYS, reverse=True)


def test_broadcast_is_written_once(tmp_path: Path) -> None:
    once = _spool(tmp_path / "b", ExchangeSpec(ExchangeKind.BROADCAST, 8), 1)
    gather = _spool(tmp_path / "g", ExchangeSpec(ExchangeKind.GATHER, 1), 1)
    size = {p.name: p.stat().st_size for p in (tmp_path / "b").rglob("*.arrow")}
    assert sum(size.values()) == sum(p.stat().st_size for p in (tmp_path / "g").rglob("*.arrow"))
    assert once.files and gather.files


def test_uncommitted_attempt_is_not_readable(tmp_path: Path) -> None:
    location = create_query_folder(str(tmp_path), "q1")
    writer = SpoolWriter(location, 0, 0, 0, ExchangeSpec(ExchangeKind.GATHER, 1), SCHEMA)
    for batch in _batches(0):
        writer.write(batch)
    data, index = location.paths(0, 0, 0)
    assert not Path(index).exists()  # written last, on commit
    writer.abort()
    assert not Path(data).exists()
    remove_query_folder(location)
    assert not (tmp_path / "q1").exists()
    remove_query_folder(location)  # idempotent


def test_task_book_fences_a_second_report() -> None:
    book = TaskBook()
    first = TaskReport(TaskDescription("q", _stage(), 0, 1).task_id, "w1", 0.1)
    late = TaskReport(TaskDescription("q", _stage(), 0, 0).task_id, "w0", 0.2)
    assert book.commit(first)
    assert not book.commit(late)
    assert book.committed[(0, 0)] is first


def _stage():  # type: ignore[no-untyped-def]
    con = shoal.connect(partitions=1)
    con.register_arrow("t", pa.table({"a": [1]}))
    return con.prepare("SELECT a FROM t").graph.root


# ------------------------------------------------------------------- zombie


class _Handle:
    def __init__(self, worker: str) -> None:
        self._future: Future[TaskReport] = Future()
        self._worker = worker

    @property
    def future(self) -> Future[TaskReport]:
        return self._future

    @property
    def worker(self) -> str | None:
        return self._worker

    def cancel(self) -> None:
        pass


class ZombieExecutor:
    """Attempt 0 of (stage, partition 0) is reported lost at once, but it is not dead:
    it runs to the end and commits its files after attempt 1 has finished — before the
    scheduler hears of attempt 1, so the consumers start with both attempts' files in
    the spool."""

    def __init__(self, settings: Settings, stage: int) -> None:
        self.inner = ThreadExecutor(settings)
        self.stage = stage
        self.zombie: TaskDescription | None = None
        self.zombie_index: Path | None = None
        self.zombie_rows = 0

    def submit(self, task: TaskDescription):  # type: ignore[no-untyped-def]
        if (task.stage.id, task.partition) != (self.stage, 0):
            return self.inner.submit(task)
        handle = _Handle(f"zombie-test-a{task.attempt}")
        if task.attempt == 0:
            self.zombie = task
            handle.future.set_exception(WorkerLostError("worker stopped answering"))
            return handle
        real = self.inner.submit(task)

        def after(done: Future[TaskReport]) -> None:
            assert self.zombie is not None
            report = run_spooled_task(self.zombie, TaskServices.standalone(), lambda: False)
            assert report.written is not None
            self.zombie_index = Path(report.written.file.index_path)
            self.zombie_rows = sum(report.written.rows_per_destination)
            error = done.exception()
            if error is None:
                handle.future.set_result(done.result())
            else:
                handle.future.set_exception(error)

        real.future.add_done_callback(after)
        return handle

    def close(self) -> None:
        self.inner.close()


def test_zombie_attempt_that_commits_late_leaves_the_result_unchanged(
    tpch_sf01_dir: Path, tmp_path: Path
) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=2, retry_policy="task", spool=str(tmp_path))
    q = 1  # its leaf stage's partial sums would double if both attempts were read
    prepared = con.prepare(query_text(q))
    executor = ZombieExecutor(prepared.settings, stage=0)
    run = MaterializedRun(prepared.graph, prepared.settings, executor)
    run.start()
    table = run.read_all().rename_columns(list(prepared.logical.output_names))
    assert_matches_answer(table, "0.1", q)
    assert executor.zombie_index is not None and executor.zombie_rows > 0
    sm = run.metrics.stages[0]
    assert sm.attempts_per_task[0] == 2 and sm.retries == 1
    assert sm.workers[0].startswith("local:shoal-s0-t0-a1")
    assert list(tmp_path.iterdir()) == []  # the zombie's files went with the query


# ---------------------------------------------------------------- clean-up


def _spool_files(root: Path) -> list[Path]:
    return [p for p in root.rglob("*")]


def _wait_no_task_threads() -> None:
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        if not [t for t in threading.enumerate() if t.name.startswith("shoal-")]:
            return
        time.sleep(0.02)
    raise AssertionError([t.name for t in threading.enumerate() if t.name.startswith("shoal-")])


@pytest.fixture
def spooled(tpch_sf01_dir: Path, tmp_path: Path) -> tuple[shoal.Connection, Path]:
    root = tmp_path / "spool"
    con = tpch_connection(tpch_sf01_dir, partitions=2, retry_policy="task", spool=str(root))
    return con, root


def test_no_spool_file_after_success(spooled: tuple[shoal.Connection, Path]) -> None:
    con, root = spooled
    seen: list[int] = []
    stream = con.stream(query_text(3))
    for _batch in stream:
        seen.append(len(_spool_files(root)))
        # While the result is read, the committed stages are still there.
        assert seen[-1] > 0
    assert seen and _spool_files(root) == []
    _wait_no_task_threads()


def test_no_spool_file_after_failure(spooled: tuple[shoal.Connection, Path]) -> None:
    con, root = spooled
    with pytest.raises(TransientError):
        con.sql(query_text(3), faults=[Fault(FaultKind.TRANSIENT, 2, 0)])
    assert _spool_files(root) == []
    _wait_no_task_threads()


def test_no_spool_file_after_timeout(spooled: tuple[shoal.Connection, Path]) -> None:
    con, root = spooled
    with pytest.raises(QueryTimeoutError):
        con.sql(query_text(3), timeout=0.5, faults=[Fault(FaultKind.SLOW, 2, 0, seconds=30)])
    assert _spool_files(root) == []
    _wait_no_task_threads()


def test_no_spool_file_after_cancel(spooled: tuple[shoal.Connection, Path]) -> None:
    con, root = spooled
    stream = con.stream(query_text(9), faults=[Fault(FaultKind.SLOW, 3, 1, seconds=30)])
    threading.Timer(0.5, stream.cancel).start()
    started = time.monotonic()
    with pytest.raises(QueryCancelledError):
        stream.read_all()
    assert time.monotonic() - started < 10
    assert _spool_files(root) == []
    _wait_no_task_threads()


def test_no_spool_file_after_closing_a_half_read_stream(
    spooled: tuple[shoal.Connection, Path],
) -> None:
    con, root = spooled
    with con.stream("SELECT l_orderkey FROM lineitem") as stream:
        first = next(iter(stream))
        assert first.num_rows > 0
    assert _spool_files(root) == []
    _wait_no_task_threads()
