"""Every error class survives pickling intact: a task's error crosses process boundaries.

Each class in ``shoal.errors`` (found by walking the module, so a new class is
covered without touching this file) is built with typical arguments, pickled and
unpickled: same class, same message, same attributes.
"""

from __future__ import annotations

import inspect
import pickle

import pytest

import shoal.errors as errors
from shoal.runtime.faults import FaultSpecError

#: Arguments for classes whose __init__ wants more than a message.
ARGS: dict[type[BaseException], tuple[tuple[object, ...], dict[str, object]]] = {
    errors.SqlSyntaxError: (("unexpected token", 3, 14), {}),
    errors.UnknownTableError: (("lineitme", ["lineitem", "orders"]), {}),
    errors.UnknownColumnError: (("l_qty", ["l_quantity", "l_tax"]), {}),
    errors.UnsupportedError: (("window functions",), {}),
    errors.ExecutionError: (
        ("boom", 1, 2, 0),
        {"attempts": 4, "worker": "local:shoal-s1-t2-a3"},
    ),
    errors.ResourceExhaustedError: (("HashJoin", 100, 50, 80, 200), {"stage": 1, "task": 0}),
}


def _classes() -> list[type[BaseException]]:
    found = [
        obj
        for _, obj in inspect.getmembers(errors, inspect.isclass)
        if issubclass(obj, errors.ShoalError) and obj.__module__ == errors.__name__
    ]
    return [*sorted(found, key=lambda c: c.__name__), FaultSpecError]


def _make(cls: type[BaseException]) -> BaseException:
    for base in cls.__mro__:
        if base in ARGS:
            args, kwargs = ARGS[base]
            return cls(*args, **kwargs)
    return cls("something went wrong")


def _public_state(err: BaseException) -> dict[str, object]:
    return {k: v for k, v in vars(err).items() if not k.startswith("__")}


@pytest.mark.parametrize("cls", _classes(), ids=lambda c: c.__name__)
def test_error_round_trips_through_pickle(cls: type[BaseException]) -> None:
    err = _make(cls)
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is cls
    assert str(copy) == str(err)
    assert copy.args == err.args
    assert _public_state(copy) == _public_state(err)


def test_the_known_offenders_come_back_right() -> None:
    table = pickle.loads(pickle.dumps(errors.UnknownTableError("lineitme", ["lineitem"])))
    assert str(table) == "unknown table 'lineitme'; did you mean 'lineitem'?"
    assert table.name == "lineitme"
    unsupported = pickle.loads(pickle.dumps(errors.UnsupportedError("PIVOT")))
    assert str(unsupported) == "unsupported: PIVOT"
    assert unsupported.construct == "PIVOT"
    syntax = pickle.loads(pickle.dumps(errors.SqlSyntaxError("bad", 2, 5)))
    assert str(syntax) == "syntax error (line 2, column 5): bad"
    assert (syntax.line, syntax.column) == (2, 5)
    failed = pickle.loads(
        pickle.dumps(errors.TransientError("lost", 3, 1, 2, attempts=3, worker="w1"))
    )
    assert str(failed) == "[stage 3, task 1, attempt 2, 3 attempts, worker w1] lost"
    assert (failed.stage, failed.partition, failed.attempt, failed.attempts) == (3, 1, 2, 3)
    assert failed.worker == "w1"


def test_every_class_is_covered() -> None:
    names = {c.__name__ for c in _classes()}
    assert {
        "UnknownTableError",
        "UnsupportedError",
        "TransientError",
        "WorkerLostError",
        "InternalError",
        "QueryInterruptedError",
    } <= names
