"""Spill files: batches written once as lz4-compressed Arrow IPC, read back in order.

``SpillSpace`` is one query's folder (``shoal-spill-<random>`` under ``spill_dir``,
default the system temp folder), made on the first spill and removed with
everything in it when the query ends — success, error, cancellation or timeout
(the runtime calls ``remove`` after joining every task). A ``SpillFile`` is
written by one task and read back by it, one batch at a time, so reading holds at
most one batch.
"""

from __future__ import annotations

import itertools
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator

import pyarrow as pa

from shoal.errors import QueryCancelledError
from shoal.metrics.operator import OperatorMetrics

_OPTIONS = pa.ipc.IpcWriteOptions(compression="lz4")


class SpillSpace:
    def __init__(self, root: str | None = None):
        self.root = root or tempfile.gettempdir()
        self._dir: str | None = None
        self._lock = threading.Lock()
        self._names = itertools.count()
        self._removed = False
        self.files = 0
        self.bytes = 0

    @property
    def path(self) -> str | None:
        """The query's folder, once something spilled."""
        return self._dir

    def new_file(self, schema: pa.Schema, metrics: OperatorMetrics | None = None) -> SpillFile:
        with self._lock:
            if self._removed:
                # The query ended (cancelled) while a task still ran: write nothing.
                raise QueryCancelledError("query cancelled: its spill folder is gone")
            if self._dir is None:
                os.makedirs(self.root, exist_ok=True)
                self._dir = tempfile.mkdtemp(prefix="shoal-spill-", dir=self.root)
            path = os.path.join(self._dir, f"{next(self._names):06d}.arrow")
            self.files += 1
        if metrics is not None:
            metrics.spill_files += 1
        return SpillFile(self, path, schema, metrics)

    def _wrote(self, n: int) -> None:
        with self._lock:
            self.bytes += n

    def remove(self) -> None:
        """Delete the folder and every file in it (idempotent)."""
        with self._lock:
            self._removed = True
            path, self._dir = self._dir, None
        if path is not None:
            shutil.rmtree(path, ignore_errors=True)


class SpillFile:
    def __init__(
        self, space: SpillSpace, path: str, schema: pa.Schema, metrics: OperatorMetrics | None
    ):
        self.space = space
        self.path = path
        self.schema = schema
        self.metrics = metrics
        self.rows = 0
        self.data_bytes = 0  # uncompressed, as held in memory
        self._sink: pa.OSFile | None = None
        self._writer: pa.ipc.RecordBatchStreamWriter | None = None
        self._closed = False

    def write(self, batch: pa.RecordBatch | pa.Table) -> None:
        if not batch.num_rows:
            return
        if self._writer is None:
            self._sink = pa.OSFile(self.path, "wb")
            self._writer = pa.ipc.new_stream(self._sink, self.schema, options=_OPTIONS)
        if isinstance(batch, pa.Table):
            self._writer.write_table(batch)
        else:
            self._writer.write_batch(batch)
        self.rows += batch.num_rows
        self.data_bytes += batch.nbytes

    def close(self) -> None:
        """Done writing (idempotent)."""
        if self._closed:
            return
        self._closed = True
        if self._writer is not None and self._sink is not None:
            self._writer.close()
            self._sink.close()
            size = os.path.getsize(self.path)
            self.space._wrote(size)
            if self.metrics is not None:
                self.metrics.spilled_bytes += size

    def read(self) -> Iterator[pa.RecordBatch]:
        """The batches in the order written, one at a time."""
        self.close()
        if self._writer is None:
            return
        with pa.OSFile(self.path, "rb") as source:
            reader = pa.ipc.open_stream(source)
            yield from reader

    def delete(self) -> None:
        self.close()
        try:
            os.remove(self.path)
        except FileNotFoundError:
            pass
