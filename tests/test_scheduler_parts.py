"""The pieces under the scheduler: retry rules, shared values after a failure, broken
channels, the import layering, and runtime filters switched off for materialized plans."""

from __future__ import annotations

import ast
import threading
import time
from pathlib import Path

import pytest
from support.tpch import query_text, tpch_connection

import shoal
from shoal.errors import (
    ExecutionError,
    InternalError,
    PlanError,
    QueryCancelledError,
    TransientError,
    UnknownTableError,
    WorkerLostError,
)
from shoal.exchange.channel import Channel
from shoal.exchange_spec import RetryPolicy
from shoal.runtime.shared import SharedValues
from shoal.runtime.slots import TaskSlots
from shoal.scheduler.retry import FailureKind, RetryRules, classify

SRC = Path(shoal.__file__).resolve().parent


def test_failures_are_classified() -> None:
    assert classify(TransientError("x")) is FailureKind.TRANSIENT
    assert classify(WorkerLostError("x")) is FailureKind.TRANSIENT
    assert classify(OSError("disk")) is FailureKind.TRANSIENT
    assert classify(ExecutionError("division by zero")) is FailureKind.DETERMINISTIC
    assert classify(UnknownTableError("t", [])) is FailureKind.USER
    assert classify(InternalError("bug")) is FailureKind.INTERNAL
    assert classify(PlanError("bug")) is FailureKind.INTERNAL
    assert classify(KeyError("bug")) is FailureKind.INTERNAL
    assert classify(QueryCancelledError("stop")) is FailureKind.CANCELLED


def test_retry_rules_bound_the_attempts() -> None:
    rules = RetryRules(RetryPolicy.TASK, task_retries=2, backoff_seconds=0.1)
    assert rules.max_attempts == 3
    assert rules.should_retry(TransientError("x"), 1) and rules.should_retry(TransientError("x"), 2)
    assert not rules.should_retry(TransientError("x"), 3)
    assert not rules.should_retry(ExecutionError("cast failed"), 1)
    assert [rules.backoff(k) for k in (1, 2, 3)] == pytest.approx([0.1, 0.2, 0.4])
    none = RetryRules(RetryPolicy.NONE)
    assert none.max_attempts == 1 and not none.should_retry(TransientError("x"), 1)
    with pytest.raises(ValueError):
        RetryRules(RetryPolicy.TASK, task_retries=-1)


def test_shared_value_is_made_again_after_a_failed_make() -> None:
    shared = SharedValues(TaskSlots(2))
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) == 1:
            raise TransientError("first make fails")
        return "index"

    with pytest.raises(TransientError):
        shared.get("k", flaky)
    assert shared.get("k", flaky) == "index"  # the re-run makes it: not the old error
    assert shared.get("k", flaky) == "index" and len(calls) == 2


def test_waiters_of_a_failed_make_make_it_themselves() -> None:
    shared = SharedValues(TaskSlots(4))
    started, release = threading.Event(), threading.Event()
    got: list[object] = []

    def failing() -> str:
        started.set()
        release.wait()
        raise TransientError("maker lost")

    def waiter() -> None:
        got.append(shared.get("k", lambda: "made by the waiter"))

    maker_error: list[BaseException] = []

    def maker() -> None:
        try:
            shared.get("k", failing)
        except TransientError as err:
            maker_error.append(err)

    t1 = threading.Thread(target=maker)
    t1.start()
    started.wait()
    t2 = threading.Thread(target=waiter)
    t2.start()
    release.set()
    t1.join(5)
    t2.join(5)
    assert maker_error and got == ["made by the waiter"]


def test_a_failed_producer_is_not_an_ended_stream() -> None:
    import pyarrow as pa

    ch = Channel(1 << 20, producers=2, cancelled=lambda: False)
    ch.put(pa.record_batch([pa.array([1])], names=["a"]))
    ch.close()
    assert ch.get() is not None
    ch.close(failed=True)
    with pytest.raises(QueryCancelledError, match="a producer failed"):
        ch.get()


def _imports(folder: str) -> set[str]:
    found: set[str] = set()
    for path in (SRC / folder).rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom) and node.module:
                found.add(node.module)
            elif isinstance(node, ast.Import):
                found.update(alias.name for alias in node.names)
    return found


def test_layering() -> None:
    """The scheduler never imports SQL or operators; the transports never import the plan."""
    scheduler = _imports("scheduler")
    assert not [m for m in scheduler if m.startswith(("shoal.sql", "shoal.physical.operators"))]
    assert not [m for m in _imports("exchange") if m.startswith("shoal.physical")]
    physical = _imports("physical")
    assert not [m for m in physical if m.startswith(("shoal.scheduler", "shoal.runtime"))]


def test_materialized_plans_have_no_runtime_filters(tpch_sf01_dir: Path) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=2)
    pipelined = con.explain(query_text(21))
    assert "RuntimeFilter" in pipelined and "Runtime filters: off" not in pipelined
    materialized = con.explain(query_text(21), retry_policy="task")
    assert "RuntimeFilter" not in materialized and "publishes=" not in materialized
    assert "Runtime filters: off (retry_policy=task runs a stage only after" in materialized
    assert con.settings.runtime_filters  # the connection's own setting is untouched


def test_a_yielding_task_gives_its_slot_to_a_waiting_one() -> None:
    slots = TaskSlots(1)
    slots.acquire()
    slots.yield_to_waiting()  # nobody waits: it keeps its slot and returns at once
    slots.release()
    order: list[str] = []
    holding = threading.Event()

    def ahead() -> None:  # reads ahead on the only slot
        slots.acquire()
        holding.set()
        while not slots._waiting:  # until the other task is parked in acquire
            time.sleep(0.001)
        slots.yield_to_waiting()  # the waiting task runs first ...
        order.append("ahead")  # ... and this one resumes once the slot is free again
        slots.release()

    def needed() -> None:
        holding.wait()
        slots.acquire()
        order.append("needed")
        slots.release()

    threads = [threading.Thread(target=ahead), threading.Thread(target=needed)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert order == ["needed", "ahead"]
    slots.acquire()  # both gave their slots back
    slots.release()
