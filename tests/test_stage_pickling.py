"""Stage fragments and task descriptions are plain data that pickle.

Every stage of every plan below is wrapped in a ``TaskDescription``, pickled and
unpickled; the copy must describe the same stage: the same operators (checked
through each node's EXPLAIN line), the same schemas and the same wiring. The
plans are those of the single-table differential queries (all of them, at 3
partitions, and the ones also run at 1 partition) and of TPC-H Q1 and Q6.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import pytest
from differential.data import all_tables, materialize
from differential.test_single_table import CASES
from support.compare import assert_same_result
from support.tpch import query_text, tpch_connection

import shoal
from shoal.physical.plan import PhysicalPlan
from shoal.runtime.local import LocalRuntime
from shoal.runtime.protocol import TaskDescription
from shoal.stages.graph import Stage, StageGraph

TPCH_QUERIES = (1, 6)

PARAMS = [pytest.param(case.sql, 3, id=f"{case.id}-p3") for case in CASES] + [
    pytest.param(case.sql, 1, id=f"{case.id}-p1") for case in CASES if case.both
]


@pytest.fixture(scope="module")
def diff_connections(tmp_path_factory: pytest.TempPathFactory):
    """``get(partitions)``: a connection with the differential tables registered."""
    root = tmp_path_factory.mktemp("pickling")
    tables = all_tables()
    registrations = materialize(root, tables)
    made: dict[int, shoal.Connection] = {}

    def get(partitions: int) -> shoal.Connection:
        if partitions not in made:
            con = shoal.connect(partitions=partitions)
            for reg in registrations:
                if reg.kind == "parquet":
                    con.register_parquet(reg.name, reg.location)
                elif reg.kind == "csv":
                    con.register_csv(reg.name, reg.location)
                else:
                    con.register_arrow(reg.name, tables[reg.name])
            made[partitions] = con
        return made[partitions]

    return get


def _explain_lines(plan: PhysicalPlan) -> list[tuple[str, str]]:
    return [(type(node).__name__, node.explain_line()) for node in plan.walk()]


def _node_schemas(plan: PhysicalPlan) -> list[object]:
    return [node.schema for node in plan.walk()]


def _assert_same_stage(copy: Stage, original: Stage) -> None:
    assert isinstance(copy, Stage)
    assert copy is not original
    assert copy.id == original.id
    assert copy.num_partitions == original.num_partitions
    assert copy.inputs == original.inputs
    assert copy.output == original.output
    assert copy.consumer == original.consumer
    assert _explain_lines(copy.fragment) == _explain_lines(original.fragment)
    assert copy.fragment.schema.equals(original.fragment.schema, check_metadata=True)
    for a, b in zip(_node_schemas(copy.fragment), _node_schemas(original.fragment), strict=True):
        assert a.equals(b), f"node schema differs:\n{a}\nvs\n{b}"


def _assert_graph_round_trips(graph: StageGraph, query_id: str) -> None:
    assert graph.stages, "a plan has at least one stage"
    for stage in graph.stages:
        for partition in sorted({0, stage.num_partitions - 1}):
            task = TaskDescription(query_id, stage, partition, attempt=1)
            for protocol in (pickle.DEFAULT_PROTOCOL, pickle.HIGHEST_PROTOCOL):
                data = pickle.dumps(task, protocol=protocol)
                copy = pickle.loads(data)
                assert isinstance(copy, TaskDescription)
                assert copy.query_id == query_id
                assert copy.partition == partition
                assert copy.attempt == 1
                _assert_same_stage(copy.stage, stage)


@pytest.mark.parametrize(("sql", "partitions"), PARAMS)
def test_differential_plan_stages_pickle(sql: str, partitions: int, diff_connections) -> None:
    graph = diff_connections(partitions).prepare(sql).graph
    _assert_graph_round_trips(graph, f"q-{partitions}")


@pytest.mark.parametrize("partitions", [1, 3])
@pytest.mark.parametrize("q", TPCH_QUERIES, ids=lambda q: f"q{q:02d}")
def test_tpch_plan_stages_pickle(tpch_sf01_dir: Path, q: int, partitions: int) -> None:
    con = tpch_connection(tpch_sf01_dir, partitions=partitions)
    graph = con.prepare(query_text(q)).graph
    if partitions > 1:
        assert len(graph.stages) >= 2, "a parallel TPC-H plan has an exchange"
    _assert_graph_round_trips(graph, f"tpch-q{q}")


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT region, status, COUNT(*), SUM(price * (1 - discount)) FROM sales "
        "GROUP BY region, status",
        "SELECT id, price FROM sales ORDER BY price DESC, id LIMIT 10",
        "SELECT id, qty FROM sales ORDER BY qty, id",
    ],
    ids=["grouped", "topk", "sorted"],
)
def test_unpickled_graph_runs_to_the_same_result(sql: str, diff_connections) -> None:
    """The copies are not just look-alikes: the unpickled stages run and agree."""
    con = diff_connections(3)
    prepared = con.prepare(sql)
    graph = prepared.graph
    assert len(graph.stages) >= 2
    copies = StageGraph(
        [pickle.loads(pickle.dumps(TaskDescription("q", s, 0))).stage for s in graph.stages]
    )
    expected, _ = LocalRuntime(con.settings).execute(graph)
    actual, _ = LocalRuntime(con.settings).execute(copies)
    assert actual.schema.equals(expected.schema)
    assert_same_result(actual, expected, ordered="ORDER BY" in sql, context=sql)
