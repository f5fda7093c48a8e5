"""JSONL round-trips every event; CSV defends spreadsheets; time filtering is half-open."""

from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from hypothesis import given, settings

from pacsguard.audit.export_files import CSV_COLUMNS, event_to_json, read_jsonl, within, write_csv, write_jsonl
from pacsguard.domain import Actor, AuditEvent, ObjectRef
from pacsguard.errors import AuditExportError
from tests.unit.audit.export_samples import T0, events, sample


@settings(max_examples=200, deadline=None)
@given(events)
def test_jsonl_round_trips_every_field(event: AuditEvent) -> None:
    out = io.StringIO()
    assert write_jsonl([event], out) == 1
    text = out.getvalue()
    assert text.count("\n") == 1
    text.encode("ascii")  # escapes keep lone surrogates and controls intact
    (back,) = read_jsonl(io.StringIO(text))
    assert back == event


def test_jsonl_keeps_order_and_skips_blank_lines() -> None:
    out = io.StringIO()
    write_jsonl([sample("login.success", 1), sample("study.read", 2)], out)
    back = list(read_jsonl(io.StringIO(out.getvalue() + "\n\n")))
    assert [(e.seq, e.type) for e in back] == [(1, "login.success"), (2, "study.read")]


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "events.jsonl:2"),
        ("[1, 2]", "expected a JSON object"),
        ('{"type": "x"}', "KeyError"),
        ('{"seq": "7"}', "events.jsonl:2"),
    ],
)
def test_bad_jsonl_names_file_and_line(line: str, message: str) -> None:
    good = io.StringIO()
    write_jsonl([sample("login.success")], good)
    with pytest.raises(AuditExportError, match=message):
        list(read_jsonl(io.StringIO(good.getvalue() + line + "\n"), "events.jsonl"))


def test_a_wrongly_typed_seq_is_refused() -> None:
    data = event_to_json(sample("login.success"))
    data["seq"] = "7"
    import json

    with pytest.raises(AuditExportError, match="seq must be an integer"):
        list(read_jsonl([json.dumps(data)]))


def test_within_is_inclusive_since_exclusive_until() -> None:
    evs = [sample("login.success", seq) for seq in range(1, 6)]  # T0+1s .. T0+5s
    picked = within(evs, T0 + timedelta(seconds=2), T0 + timedelta(seconds=4))
    assert [e.seq for e in picked] == [2, 3]
    assert len(list(within(evs, None, None))) == 5
    assert [e.seq for e in within(evs, T0 + timedelta(seconds=5), None)] == [5]


HOSTILE = ['=HYPERLINK("http://evil")', "+1+2", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd", 'a,b"c\nd']


@pytest.mark.parametrize("value", HOSTILE)
def test_csv_defuses_formulas_and_escapes_quotes(value: str) -> None:
    event = AuditEvent(
        type="study.read",
        occurred_at=T0,
        actor=Actor(principal_id=value, roles=(value,)),
        objects=ObjectRef(patient_id=value, count=-3),
    )
    out = io.StringIO()
    write_csv([event], out)
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    assert tuple(header) == CSV_COLUMNS
    cells = dict(zip(header, row, strict=True))
    expected = "'" + value if value[0] in "=+-@\t\r" else value
    assert cells["principal_id"] == expected
    assert cells["patient_id"] == expected
    assert cells["roles"] == expected
    assert cells["count"] == "-3"  # numbers are numbers, not text to defuse


def test_csv_survives_undecodable_text() -> None:
    event = AuditEvent(type="login.failure", occurred_at=T0, actor=Actor(principal_id="bad\udcff"))
    out = io.StringIO()
    write_csv([event], out)
    out.getvalue().encode("utf-8")
    assert "bad?" in out.getvalue()


def test_non_finite_floats_do_not_stop_an_export() -> None:
    event = AuditEvent(type="x", occurred_at=T0, detail={"a": float("inf"), "b": [float("nan")]})
    out = io.StringIO()
    write_jsonl([event], out)
    (back,) = read_jsonl(io.StringIO(out.getvalue()))
    assert back.detail == {"a": "inf", "b": ["nan"]}
