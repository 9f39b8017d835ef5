"""Fault descriptions: the command-line form parses, bad ones are clear errors."""

from __future__ import annotations

import pytest

from shoal.runtime.faults import Fault, FaultKind, FaultSpecError, faults_for, parse_fault


def test_parse_the_command_line_form() -> None:
    fault = parse_fault("stage=1,partition=0,attempt=0,kind=transient")
    assert fault == Fault(FaultKind.TRANSIENT, 1, 0, 0)
    assert str(fault) == "stage=1,partition=0,attempt=0,kind=transient"
    assert parse_fault(str(fault)) == fault
    slow = parse_fault("stage=2, kind=slow, seconds=0.5")
    assert slow == Fault(FaultKind.SLOW, 2, None, None, 0.5)
    assert parse_fault("kind=lost-worker,partition=*") == Fault(FaultKind.LOST_WORKER)


def test_open_fields_match_every_value() -> None:
    persistent = Fault(FaultKind.INTERNAL, stage=3, partition=1)
    assert persistent.matches(3, 1, 0) and persistent.matches(3, 1, 5)
    assert not persistent.matches(3, 0, 0) and not persistent.matches(2, 1, 0)
    faults = [persistent, Fault(FaultKind.USER, 0, 0, 0)]
    assert faults_for(faults, 3, 1, 2) == (persistent,)
    assert faults_for(faults, 1, 1, 0) == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("stage=1,partition=0", "kind must be one of transient, internal, user, lost_worker, slow"),
        ("stage=1,kind=explode", "kind must be one of"),
        ("stage=one,kind=user", "stage must be a number or \\*, got 'one'"),
        ("stage=1,kind=slow,seconds=soon", "seconds must be a number"),
        ("stage 1,kind=user", "expected stage=S,partition=P,attempt=A,kind=K"),
        ("node=1,kind=user", "got 'node=1'"),
    ],
)
def test_bad_fault_descriptions(text: str, message: str) -> None:
    with pytest.raises(FaultSpecError, match=message):
        parse_fault(text)
