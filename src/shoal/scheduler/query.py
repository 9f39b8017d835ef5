"""Starting a query: the retry policy picks pipelined or materialized scheduling.

``retry_policy="none"``: every task of every stage starts at once and streams
through in-memory exchanges (``runtime/local.py``); a failure fails the query.
``retry_policy="task"``: stages run as their inputs commit to the spool and
failed tasks re-run (``scheduler/materialized.py``) on the given executor — by
default threads of this process (``runtime/threads.py``).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Protocol

import pyarrow as pa

from shoal.errors import QueryCancelledError
from shoal.exchange_spec import RetryPolicy
from shoal.metrics.progress import ProgressListener
from shoal.metrics.query import QueryMetrics
from shoal.physical.context import Settings
from shoal.runtime.faults import Fault
from shoal.runtime.local import LocalRuntime
from shoal.runtime.protocol import Executor
from shoal.runtime.threads import ThreadExecutor
from shoal.scheduler.materialized import MaterializedRun
from shoal.stages.graph import StageGraph


class RunningQuery(Protocol):
    """A started query, read as a stream of batches, stoppable from any thread."""

    @property
    def schema(self) -> pa.Schema: ...

    @property
    def metrics(self) -> QueryMetrics: ...

    @property
    def finished(self) -> bool: ...

    def batches(self) -> Iterator[pa.RecordBatch]: ...

    def read_all(self) -> pa.Table: ...

    def cancel(self, reason: QueryCancelledError | None = None) -> None: ...

    def close(self) -> None: ...


def start_query(
    graph: StageGraph,
    settings: Settings,
    *,
    timeout: float | None = None,
    faults: Sequence[Fault] = (),
    executor: Executor | None = None,
    progress: ProgressListener | None = None,
) -> RunningQuery:
    """Start ``graph`` under ``settings.retry_policy``; ``executor`` only for "task"."""
    if settings.retry_policy is RetryPolicy.NONE:
        return LocalRuntime(settings).start(graph, timeout, faults, progress)
    run = MaterializedRun(graph, settings, executor or ThreadExecutor(settings), timeout, faults)
    try:
        run.start()
    except BaseException:
        run.close()
        raise
    return run


__all__ = ["RunningQuery", "start_query"]
