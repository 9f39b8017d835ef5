"""Turning matched (probe row, build row) pairs into join output, per join kind.

Shared by the hash join and the nested-loop join: both find candidate pairs,
apply the residual condition, then call ``JoinEmitter`` for each probe batch and
once at the end (for build rows no probe row matched: right / full joins).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from functools import cached_property

import numpy as np
import numpy.typing as npt
import pyarrow as pa

from shoal.expr.evaluate import evaluate_predicate
from shoal.expr.nodes import Expr
from shoal.physical.plan import PhysicalPlan

Indices = npt.NDArray[np.int64]


class JoinShape:
    """What every two-input join shares: its inputs and its output columns.

    semi / anti joins output the left columns only; the others left then right.
    Mixed into the join operators' frozen dataclasses (fields left, right, kind).
    """

    left: PhysicalPlan
    right: PhysicalPlan
    kind: str

    def children(self) -> tuple[PhysicalPlan, ...]:
        return (self.left, self.right)

    def with_children(self, children: tuple[PhysicalPlan, ...]) -> PhysicalPlan:
        return replace(self, left=children[0], right=children[1])  # type: ignore[type-var,return-value]

    @cached_property
    def schema(self) -> pa.Schema:
        # Cached: a 100-way join asks each level for it, and each level asks below.
        if self.kind in ("semi", "anti"):
            return self.left.schema
        return pa.schema(list(self.left.schema) + list(self.right.schema))

    def maintains_input_order(self) -> bool:
        return False


def combine(
    probe: pa.RecordBatch, build: pa.Table, pi: Indices, bi: Indices, schema: pa.Schema
) -> pa.RecordBatch:
    """Probe columns then build columns, one row per pair."""
    if len(pi) == probe.num_rows and (len(pi) < 2 or bool((pi[1:] > pi[:-1]).all())):
        left = probe.columns  # every probe row once, in order (an FK join): no copy
    else:
        left = probe.take(pa.array(pi, pa.int64())).columns if len(probe.schema) else []
    build_rows = pa.array(bi, pa.int64())
    right = [_single_chunk(c).take(build_rows) for c in build.columns]
    return pa.RecordBatch.from_arrays(list(left) + right, schema=schema)


def residual_pairs(
    probe: pa.RecordBatch | pa.Table,
    build: pa.RecordBatch | pa.Table,
    pi: Indices,
    bi: Indices,
    residual: Expr,
) -> pa.RecordBatch:
    """One row per pair with only the columns ``residual`` reads: a semi or anti join
    outputs no pair, so copying the others (all of both sides) was for nothing."""
    read = residual.column_set
    if not read and len(probe.schema):
        read = frozenset((probe.schema[0].name,))  # a constant residual: keep the row count
    fields: list[pa.Field] = []
    columns: list[pa.Array] = []
    for side, rows in ((probe, pi), (build, bi)):
        positions = pa.array(rows, pa.int64())
        for field, column in zip(side.schema, side.columns, strict=True):
            if field.name in read:
                fields.append(field)
                single = column if isinstance(column, pa.Array) else _single_chunk(column)
                columns.append(single.take(positions))
    return pa.RecordBatch.from_arrays(columns, schema=pa.schema(fields))


def _single_chunk(column: pa.ChunkedArray) -> pa.Array:
    """The build side is combined once when built: its columns are one chunk each."""
    return column.chunk(0) if column.num_chunks == 1 else column.combine_chunks()


def _nulls_for(schema: pa.Schema, n: int) -> list[pa.Array]:
    return [pa.nulls(n, f.type) for f in schema]


class JoinEmitter:
    """Per-task join state: which build rows matched (for right/full joins)."""

    def __init__(
        self,
        kind: str,
        build: pa.Table,
        out_schema: pa.Schema,
        probe_schema: pa.Schema,
        residual: Expr | None,
    ):
        self.kind = kind
        self.build = build
        self.out_schema = out_schema
        self.probe_schema = probe_schema
        self.residual = residual
        self.build_matched = (
            np.zeros(build.num_rows, dtype=bool) if kind in ("right", "full") else None
        )
        # The joined schema (probe + build) for residual evaluation in semi/anti joins.
        self.pair_schema = pa.schema(list(probe_schema) + list(build.schema))

    def matches(
        self, probe: pa.RecordBatch, pi: Indices, bi: Indices
    ) -> tuple[Indices, Indices, pa.RecordBatch | None]:
        """Candidate pairs through the residual: (probe rows, build rows, the pairs'
        joined rows when the residual needed them). Marks the build rows matched."""
        pairs = None
        if self.residual is not None and len(pi) and self.kind in ("semi", "anti"):
            # Only the probe side is output: the pairs are for the residual alone.
            keep = np.asarray(
                evaluate_predicate(
                    self.residual, residual_pairs(probe, self.build, pi, bi, self.residual)
                )
            )
            if not keep.all():
                pi, bi = pi[keep], bi[keep]
        elif self.residual is not None and len(pi):
            pairs = combine(probe, self.build, pi, bi, self.pair_schema)
            keep = np.asarray(evaluate_predicate(self.residual, pairs))
            if not keep.all():
                pi, bi = pi[keep], bi[keep]
                pairs = pairs.filter(pa.array(keep))
        if self.build_matched is not None and len(bi):
            self.build_matched[bi] = True
        return pi, bi, pairs

    def pair_rows(
        self, probe: pa.RecordBatch, pi: Indices, bi: Indices, pairs: pa.RecordBatch | None
    ) -> pa.RecordBatch:
        """The output rows of matched pairs (inner, left, right, full)."""
        return pairs if pairs is not None else combine(probe, self.build, pi, bi, self.out_schema)

    def emit(
        self,
        probe: pa.RecordBatch,
        pi: Indices,
        bi: Indices,
        exclude: npt.NDArray[np.bool_] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Output for one probe batch given its candidate pairs (before the residual)."""
        yield from self.emit_pieces(probe, iter([(pi, bi)]), exclude)

    def emit_pieces(
        self,
        probe: pa.RecordBatch,
        pieces: Iterator[tuple[Indices, Indices]],
        exclude: npt.NDArray[np.bool_] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Output for one probe batch given its candidate pairs in pieces: one output
        batch per piece of pairs, so the output stays as bounded as the pieces."""
        needs_probe_side = self.kind in ("left", "full", "semi", "anti")
        matched = np.zeros(probe.num_rows, dtype=bool) if needs_probe_side else None
        pair_output = self.kind not in ("semi", "anti")
        for pi, bi in pieces:
            pi, bi, pairs = self.matches(probe, pi, bi)
            if matched is not None:
                matched[pi] = True
            if pair_output and len(pi):
                yield self.pair_rows(probe, pi, bi, pairs)
        if matched is not None:
            yield from self.probe_side(probe, matched, exclude)

    def probe_side(
        self,
        probe: pa.RecordBatch,
        matched: npt.NDArray[np.bool_],
        exclude: npt.NDArray[np.bool_] | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """What a probe batch gives besides its pairs, once all its matches are known:
        semi its matched rows, anti the others (less ``exclude``), left / full the
        unmatched rows padded with NULLs."""
        kind = self.kind
        if kind in ("semi", "anti"):
            keep = matched if kind == "semi" else ~matched
            if kind == "anti" and exclude is not None:
                keep = keep & ~exclude
            if keep.all():
                yield probe
            elif keep.any():
                yield probe.filter(pa.array(keep))
            return
        if kind in ("left", "full") and not matched.all():
            lonely = probe.filter(pa.array(~matched))
            cols = list(lonely.columns) + _nulls_for(self.build.schema, lonely.num_rows)
            yield pa.RecordBatch.from_arrays(cols, schema=self.out_schema)

    def finish(self, batch_rows: int = 1 << 62) -> Iterator[pa.RecordBatch]:
        """Build rows that matched nothing (right / full joins), in bounded batches."""
        if self.build_matched is None or self.build_matched.all():
            return
        rows = np.nonzero(~self.build_matched)[0]
        for start in range(0, len(rows), batch_rows):
            part = rows[start : start + batch_rows]
            lonely = self.build.take(pa.array(part, pa.int64()))
            cols = _nulls_for(self.probe_schema, len(part)) + [
                c.combine_chunks() for c in lonely.columns
            ]
            yield pa.RecordBatch.from_arrays(cols, schema=self.out_schema)
