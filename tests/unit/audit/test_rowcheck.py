"""The bulk row check of ``verify`` decides exactly as the JSON decode does, and falls back row by row."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine, text

from pacsguard.audit import merkle, verify
from pacsguard.audit._rowcheck import _FIRST_US, _columns_agree, _row_problem, check_rows
from pacsguard.audit.canonical import prepare
from pacsguard.audit.log import _rows
from pacsguard.clock import FakeClock
from pacsguard.domain.events import Actor, AuditEvent, DecisionRef, ObjectRef
from tests.unit.audit.conftest import OpenLog

Row = tuple[Any, ...]

texts = st.one_of(
    st.none(),
    st.text(max_size=12),
    st.sampled_from(['a"b', "c\\d", "}", '},"decision":', ',"objects":{', '"ip":"x"', "Zürich", "\ud800", "\x01"]),
)


def rows_of(*events: AuditEvent, first: int = 0) -> list[Row]:
    """The rows the log would store for ``events`` at seq ``first`` on."""
    return _rows([prepare(e) for e in events], merkle.RightEdge(first))[0]


def agrees(row: Row) -> bool:
    """The bulk check of one row's search columns."""
    return _columns_agree([row[9]], tuple((v,) for v in row[:8]))


def decode_agrees(row: Row) -> bool:
    """What the reference, the full decode of the row-by-row pass, says of the same row."""
    try:
        return _row_problem(row, row[0]) is None
    except (ValueError, KeyError, TypeError, AttributeError, StopIteration):
        return False


def event(principal: str | None, ip: str | None, patient: str | None, study: str | None, **kw: Any) -> AuditEvent:
    return AuditEvent(
        kw.pop("type", "study.read"),
        kw.pop("occurred_at", datetime(2020, 1, 1, tzinfo=UTC)),
        actor=Actor(principal, ("r",), ip=ip, auth_strength=2),
        objects=ObjectRef(patient_id=patient, study_uid=study, count=3),
        **kw,
    )


@given(
    texts,
    texts,
    texts,
    texts,
    st.dictionaries(st.text(max_size=6), texts, max_size=3),
    st.integers(-(2**40), 2**50),
    st.booleans(),
    st.integers(0, 6),
    texts,
)
def test_the_bulk_check_decides_as_the_decode_does(
    principal: str | None,
    ip: str | None,
    patient: str | None,
    study: str | None,
    detail: dict[str, str | None],
    us: int,
    decided: bool,
    changed: int,
    other: str | None,
) -> None:
    when = datetime(2020, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)
    decision = DecisionRef("permit", ("rule",)) if decided else None
    (row,) = rows_of(event(principal, ip, patient, study, occurred_at=when, decision=decision, detail=detail))
    assert agrees(row)  # the stored columns always agree, escapes and odd text included
    assert decode_agrees(row)
    column = 1 + changed  # one search column (not seq: the bulk check compares it with the range)
    tampered = (*row[:column], other if column > 3 else f"{row[column]}x", *row[column + 1 :])
    assert agrees(tampered) == decode_agrees(tampered)
    if tampered[column] != row[column]:
        assert not agrees(tampered)


@pytest.mark.parametrize(
    ("canonical", "columns"),
    [
        # a repeated key: the decode keeps the last value, so must the bulk check
        (
            b'{"actor":{"ip":"1","ip":"2"},"decision":null,"detail":{},"objects":{},'
            b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":0,"type":"t"}',
            (0, 1577836800000000, "t", "success", None, "1", None, None),
        ),
        (
            b'{"actor":{"ip":"1"},"decision":null,"detail":{},"objects":{},"actor":{"ip":"2"},'
            b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":0,"type":"t"}',
            (0, 1577836800000000, "t", "success", None, "1", None, None),
        ),
        # not JSON (NaN) though the indexed members look right
        (
            b'{"actor":{},"decision":null,"detail":{"x":NaN},"objects":{},'
            b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":0,"type":"t"}',
            (0, 1577836800000000, "t", "success", None, None, None, None),
        ),
        # a column of another type with the same text
        (
            b'{"actor":{"ip":"1"},"decision":null,"detail":{},"objects":{},'
            b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":0,"type":"t"}',
            (0, 1577836800000000, "t", "success", None, b"1", None, None),
        ),
        (
            b'{"actor":{},"decision":null,"detail":{},"objects":{},'
            b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":0,"type":"t"}',
            (0, "1577836800000000", "t", "success", None, None, None, None),
        ),
        # a time the canonical form does not write, and one outside datetime's range
        (
            b'{"actor":{},"decision":null,"detail":{},"objects":{},'
            b'"occurred_at":"2020-01-01T00:00:00Z","outcome":"success","seq":0,"type":"t"}',
            (0, 1577836800000000, "t", "success", None, None, None, None),
        ),
        (
            b'{"actor":{},"decision":null,"detail":{},"objects":{},'
            b'"occurred_at":"0000-12-31T23:59:59.999999Z","outcome":"success","seq":0,"type":"t"}',
            (0, _FIRST_US - 1, "t", "success", None, None, None, None),
        ),
        # what msgspec takes but the decode does not: space around the event, bad UTF-8 where msgspec skips
        (
            b' {"actor":{},"decision":null,"detail":{},"objects":{},'
            b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":0,"type":"t"}\n',
            (0, 1577836800000000, "t", "success", None, None, None, None),
        ),
        (
            b'{"actor":{},"decision":null,"detail":{"x":"\xff","\xed\xa0\x80":1},"objects":{},'
            b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":0,"type":"t"}',
            (0, 1577836800000000, "t", "success", None, None, None, None),
        ),
        # null instead of a missing key: both read None
        (
            b'{"actor":{"ip":null},"decision":null,"detail":{},"objects":{},'
            b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":0,"type":"t"}',
            (0, 1577836800000000, "t", "success", None, None, None, None),
        ),
    ],
)
def test_odd_bytes_never_pass_the_bulk_check_wrongly(canonical: bytes, columns: Row) -> None:
    """Where the bulk check cannot decide it says no, and the row-by-row decode decides."""
    row = (*columns, merkle.leaf_hash(canonical), canonical)
    assert decode_agrees(row) or not agrees(row)
    assert (check_rows([row], 0, 1).finding is None) == decode_agrees(row)


def test_a_range_with_odd_rows_falls_back_to_the_decode() -> None:
    """Rows the bulk check refuses but the decode accepts still verify, and the first bad one is named."""
    rows = rows_of(*(event(f"u{i}", "10.0.0.1", f"P{i}", f"1.2.{i}") for i in range(20)))
    odd = (
        b'{"actor":{"ip":null},"decision":null,"detail":{"x":NaN},"objects":{},'
        b'"occurred_at":"2020-01-01T00:00:00.000000Z","outcome":"success","seq":5,"type":"study.read"}'
    )
    rows[5] = (5, 1577836800000000, "study.read", "success", None, None, None, None, merkle.leaf_hash(odd), odd)
    chunk = check_rows(rows, 0, 20)
    assert chunk.finding is None
    assert chunk.leaves == b"".join(r[8] for r in rows)
    rows[12] = (*rows[12][:6], "P-other", *rows[12][7:])
    chunk = check_rows(rows, 0, 20)
    assert chunk.finding is not None
    assert (chunk.finding.seq, chunk.finding.kind) == (12, "altered")
    assert chunk.leaves == b"".join(r[8] for r in rows[:12])


def test_leaf_hashes_cut_differently_are_named() -> None:
    """The joined comparison of leaf hashes must not pass hashes that join up the same but are cut elsewhere."""
    rows = rows_of(*(event("u", None, "P", None) for _ in range(8)))
    left, right = rows[3][8], rows[4][8]
    rows[3] = (*rows[3][:8], left[:31], rows[3][9])
    rows[4] = (*rows[4][:8], left[31:] + right, rows[4][9])
    chunk = check_rows(rows, 0, 8)
    assert chunk.finding is not None
    assert (chunk.finding.seq, chunk.finding.kind) == (3, "altered")


def test_a_column_of_another_type_is_named(open_log: OpenLog, clock: FakeClock, engine: Engine) -> None:
    """SQLite keeps a BLOB put into a text column: the same characters as bytes are not the same value."""
    if engine.dialect.name != "sqlite":
        pytest.skip("PostgreSQL columns hold only their declared type")
    log = open_log()
    for i in range(6):
        log.emit(AuditEvent("study.read", clock.now(), actor=Actor(f"user{i}", ip="10.0.0.9"), objects=ObjectRef("P1")))
    log.sign_head()
    assert verify(engine, None).ok
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_events SET ip = CAST(ip AS BLOB) WHERE seq = 4"))
    first = verify(engine, None).first()
    assert first is not None
    assert (first.seq, first.kind) == (4, "altered")


def test_a_changed_column_of_an_escaped_event_is_found(open_log: OpenLog, clock: FakeClock, engine: Engine) -> None:
    log = open_log()
    for i in range(6):
        log.emit(AuditEvent("study.read", clock.now(), actor=Actor(f'o"brien\\{i}'), objects=ObjectRef("P1")))
    log.sign_head()
    report = verify(engine, None)
    assert report.ok, report.findings
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events DISABLE TRIGGER USER"))
        conn.execute(text("UPDATE audit_events SET principal_id = 'someone' WHERE seq = 4"))
        if engine.dialect.name == "postgresql":
            conn.execute(text("ALTER TABLE audit_events ENABLE TRIGGER USER"))
    report = verify(engine, None)
    first = report.first()
    assert first is not None
    assert (first.seq, first.kind) == (4, "altered")
