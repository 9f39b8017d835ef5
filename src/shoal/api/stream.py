"""A running query read as a stream of Arrow batches, stoppable from any thread."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from shoal.api.result import Result
from shoal.errors import QueryCancelledError
from shoal.memory.pool import MemoryPool
from shoal.metrics.query import QueryMetrics

if TYPE_CHECKING:
    from shoal.scheduler.query import RunningQuery


class QueryStream:
    """The batches of a query's result as its tasks make them.

    Iterate it (once) for ``pyarrow.RecordBatch`` es with the result's column names;
    ``cancel()`` from any thread stops every task and makes the reader raise
    ``QueryCancelledError``; ``close()`` (or leaving a ``with`` block) stops a query
    that still runs and waits for its tasks. ``result()`` reads what is left into a
    ``Result`` with its EXPLAIN ANALYZE figures.
    """

    def __init__(
        self,
        run: RunningQuery,
        names: tuple[str, ...],
        describe: Callable[[QueryMetrics], tuple[str, dict[str, object]]],
        on_end: Callable[[QueryStream], None] = lambda stream: None,
        sql: str = "",
    ):
        self._run = run
        self._names = list(names)
        self._describe = describe
        self._on_end = on_end
        self._consumed = False
        self._sql = sql
        self.schema: pa.Schema = pa.schema(
            [field.with_name(name) for field, name in zip(run.schema, names, strict=True)]
        )

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        if self._consumed:
            raise QueryCancelledError("this query's result has already been read")
        self._consumed = True
        try:
            for batch in self._run.batches():
                yield pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        finally:
            self._run.close()
            self._on_end(self)

    def read_all(self) -> pa.Table:
        return pa.Table.from_batches(list(self), schema=self.schema)

    def result(self) -> Result:
        table = self.read_all()
        metrics, describe = self._run.metrics, self._describe
        # The renderer keeps the plan and the figures, not the finished run.
        return Result(table, metrics=metrics, sql=self._sql, describe=lambda: describe(metrics))

    @property
    def metrics(self) -> QueryMetrics:
        """The run's figures; complete once the stream has ended."""
        return self._run.metrics

    @property
    def memory(self) -> MemoryPool | None:
        """The query's memory pool (its budget, what is reserved now, the peak); None
        where the query has no one pool (materialized tasks and Ray tasks each have
        their own)."""
        pool: MemoryPool | None = getattr(self._run, "memory", None)
        return pool

    @property
    def spill_path(self) -> str | None:
        """The query's spill folder while it exists (None before the first spill and
        after the query ended)."""
        spill = getattr(self._run, "spill", None)
        return None if spill is None else spill.path

    @property
    def finished(self) -> bool:
        return self._run.finished

    def cancel(self) -> None:
        self._run.cancel()

    def close(self) -> None:
        self._run.close()
        self._on_end(self)

    def __enter__(self) -> QueryStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
