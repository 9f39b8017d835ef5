"""A slow consumer holds its producers back: exchange buffers stay within their cap.

The pipelined exchange's channels are bounded (``exchange_buffer_bytes`` per
destination); a consumer that reads slowly makes its producers block in ``put``
instead of piling batches up. The figures (``ExchangeMetrics``) must show both: a
buffer high-water mark within the cap and producer blocked time above zero.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

import shoal
from shoal.exchange.channel import Channel
from shoal.memory.pool import MemoryPool

BATCH_ROWS = 4096


def _batch(i: int) -> pa.RecordBatch:
    return pa.record_batch({"a": pa.array(range(i, i + BATCH_ROWS), pa.int64())})


def test_channel_with_a_slow_consumer_stays_within_its_cap() -> None:
    size = _batch(0).nbytes
    cap = 4 * size + size // 2  # room for four batches, not five
    pool = MemoryPool(1 << 30)
    channel = Channel(cap, producers=2, cancelled=lambda: False, reservation=pool.reservation("x"))
    peaks: list[int] = []

    def produce(offset: int) -> None:
        for i in range(40):
            channel.put(_batch(offset + i * BATCH_ROWS))
            peaks.append(pool.reserved)
        channel.close()

    threads = [threading.Thread(target=produce, args=(k << 32,)) for k in range(2)]
    for t in threads:
        t.start()
    got = 0
    while (batch := channel.get(lend_slot=False)) is not None:
        got += batch.num_rows
        time.sleep(0.003)  # the slow consumer
    for t in threads:
        t.join()
    assert got == 80 * BATCH_ROWS
    assert channel.high_water_bytes <= cap
    assert channel.high_water_bytes >= 4 * size  # it did fill up
    assert channel.put_blocked_seconds > 0
    # The buffered bytes were reserved from the pool, and given back.
    assert max(peaks) <= cap
    assert pool.reserved == 0


def test_slow_consumer_stage_blocks_its_producers(tmp_path: Path) -> None:
    # The aggregate's final stage starts late (an injected slow task), so the partial
    # aggregates upstream fill the hash exchange's buffers and then wait.
    n = 600_000
    table = pa.table({"k": pa.array(range(n), pa.int64()), "v": pa.array([1] * n, pa.int64())})
    pq.write_table(table, tmp_path / "t.parquet", row_group_size=50_000)
    cap = 256 << 10
    con = shoal.connect(partitions=2, exchange_buffer_bytes=cap, batch_rows=BATCH_ROWS)
    con.register_parquet("t", tmp_path / "t.parquet")
    sql = "SELECT k % 100000 AS g, sum(v) AS s FROM t GROUP BY k % 100000"
    graph = con.explain(sql)
    assert "Exchange" in graph
    plain = con.sql(sql)
    final_stage = max(plain.metrics.exchanges.values(), key=lambda e: e.rows).consumer_stage
    assert final_stage is not None
    result = con.sql(sql, faults=[f"stage={final_stage},kind=slow,seconds=1.0"])
    assert result.num_rows == 100_000
    assert sorted(result.to_arrow().column("s").to_pylist()) == [6] * 100_000
    shuffle = next(e for e in result.metrics.exchanges.values() if e.consumer_stage == final_stage)
    assert shuffle.rows > 0
    # Batches into a non-empty buffer are admitted only while they fit under the cap,
    # and no single batch here is near the cap.
    assert 0 < shuffle.buffer_high_water_bytes <= cap
    assert shuffle.producer_blocked_seconds > 0
