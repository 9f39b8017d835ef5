"""The server's counters: queries started, finished, failed, stopped, and why.

Read by the custom Flight action ``shoal.status`` (a JSON object) and by
``FlightSqlServer.status()`` in the same process.
"""

from __future__ import annotations

import enum
import threading
import time


class QueryOutcome(enum.Enum):
    """How a query that the server started ended."""

    FINISHED = "finished"  # every batch sent
    FAILED = "failed"  # shoal raised an error (bad SQL, execution error)
    TIMED_OUT = "timed_out"  # over the server's timeout
    OVER_LIMIT = "over_limit"  # result over max_result_rows / max_result_bytes
    CLIENT_GONE = "cancelled_by_client"  # the client went away mid-stream


class ServerStatus:
    """Thread-safe counters; ``snapshot()`` is a consistent copy."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._started_at = time.time()
        self._running = 0
        self._started = 0
        self._outcomes = dict.fromkeys(QueryOutcome, 0)
        self._rows_sent = 0
        self._bytes_sent = 0

    def query_started(self) -> None:
        with self._lock:
            self._started += 1
            self._running += 1

    def query_ended(self, outcome: QueryOutcome, rows: int, nbytes: int) -> None:
        with self._lock:
            self._running -= 1
            self._outcomes[outcome] += 1
            self._rows_sent += rows
            self._bytes_sent += nbytes

    def snapshot(self) -> dict[str, int | float]:
        with self._lock:
            data: dict[str, int | float] = {
                "uptime_seconds": round(time.time() - self._started_at, 3),
                "queries_started": self._started,
                "queries_running": self._running,
                "rows_sent": self._rows_sent,
                "bytes_sent": self._bytes_sent,
            }
            for outcome, count in self._outcomes.items():
                data[f"queries_{outcome.value}"] = count
            return data
