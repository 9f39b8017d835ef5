"""Per-operator, per-task counters, merged per operator for EXPLAIN ANALYZE."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class OperatorMetrics:
    rows_out: int = 0
    batches_out: int = 0
    # Inclusive wall time spent producing this operator's output (children included).
    elapsed: float = 0.0
    # Operator-specific figures (rows read, row groups skipped, peak state rows...).
    rows_in: int = 0
    row_groups_read: int = 0
    row_groups_skipped: int = 0
    peak_state_rows: int = 0
    # Scans: seconds spent inside the Parquet reader (decompress + decode), summed
    # over tasks; the floor no operator above the scan can remove.
    decode_seconds: float = 0.0
    # Scans: row groups another scan of the query decoded for this one (ShareScans).
    row_groups_shared: int = 0
    # Memory (memory/pool.py, memory/spill.py): the largest reservation one task held
    # (summed over tasks when merged: an upper bound of what they held at once), and
    # what went to disk.
    peak_reserved_bytes: int = 0
    spilled_bytes: int = 0
    spill_files: int = 0
    # Rounds that wrote spill files: grace partitioning levels, sorted-run merge passes.
    spill_passes: int = 0
    # Partial aggregates (hot-key mitigation): rows passed on ungrouped, the most hot keys
    # one task pre-aggregated, and the rows that pre-aggregation folded away.
    passthrough_rows: int = 0
    hot_keys: int = 0
    hot_rows_absorbed: int = 0

    def merge(self, other: OperatorMetrics) -> None:
        self.rows_out += other.rows_out
        self.batches_out += other.batches_out
        self.elapsed = max(self.elapsed, other.elapsed)
        self.rows_in += other.rows_in
        self.row_groups_read += other.row_groups_read
        self.row_groups_skipped += other.row_groups_skipped
        self.peak_state_rows = max(self.peak_state_rows, other.peak_state_rows)
        self.decode_seconds += other.decode_seconds
        self.row_groups_shared += other.row_groups_shared
        self.peak_reserved_bytes += other.peak_reserved_bytes
        self.spilled_bytes += other.spilled_bytes
        self.spill_files += other.spill_files
        self.spill_passes = max(self.spill_passes, other.spill_passes)
        self.passthrough_rows += other.passthrough_rows
        self.hot_keys = max(self.hot_keys, other.hot_keys)
        self.hot_rows_absorbed += other.hot_rows_absorbed
