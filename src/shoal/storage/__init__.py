"""Writing tables: hash-partitioned Parquet shards with their layout beside them."""

from shoal.storage.writer import TargetExistsError, WriteSummary, write_hash_partitioned

__all__ = ["TargetExistsError", "WriteSummary", "write_hash_partitioned"]
