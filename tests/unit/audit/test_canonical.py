"""Canonical bytes (RFC 8785) and the cleaning of bad input before recording."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import rfc8785
from hypothesis import given, settings
from hypothesis import strategies as st

from pacsguard.audit.canonical import (
    Limits,
    Prepared,
    _prepare_any,
    _prepare_clean,
    canonical_bytes,
    canonical_json,
    decode,
    prepare,
)
from pacsguard.audit.event_types import EVENT_TYPES, is_known
from pacsguard.audit.store import to_us
from pacsguard.domain.events import Actor, AuditEvent, DecisionRef, ObjectRef, Outcome

WHEN = datetime(2026, 1, 5, 9, 0, 0, 123456, tzinfo=UTC)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53) + 1, 2**53 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=20,
)


def event(**kwargs: object) -> AuditEvent:
    base: dict[str, object] = {
        "type": "study.read",
        "occurred_at": WHEN,
        "actor": Actor("alice", ("radiologist",), zone="north", ip="10.0.0.7", auth_strength=2),
        "objects": ObjectRef(patient_id="P1", study_uid="1.2.3", count=3),
        "decision": DecisionRef("permit", ("r1",), agreement="north-south"),
        "detail": {"path": "/dicomweb/studies/1.2.3"},
    }
    return AuditEvent(**{**base, **kwargs})  # type: ignore[arg-type]


@given(json_values)
def test_fast_path_writes_exactly_rfc8785(value: Any) -> None:
    assert canonical_json(value) == rfc8785.dumps(value)


def test_canonical_bytes_are_rfc8785_of_the_json_form_and_decode_back() -> None:
    e = event(seq=None)
    data = prepare(e).canonical(41)
    assert rfc8785.dumps(json.loads(data)) == data
    form = json.loads(data)
    assert form["seq"] == 41
    assert form["occurred_at"] == "2026-01-05T09:00:00.123456Z"
    assert form["actor"] == {
        "principal_id": "alice",
        "roles": ["radiologist"],
        "zone": "north",
        "ip": "10.0.0.7",
        "auth_strength": 2,
    }
    back = decode(data)
    assert back == prepare(e).recorded(41)
    assert canonical_bytes(back) == data


def test_timestamps_are_normalised_to_utc() -> None:
    local = WHEN.astimezone(timezone(timedelta(hours=2)))
    assert prepare(event(occurred_at=local)).canonical(1) == prepare(event()).canonical(1)
    naive = prepare(event(occurred_at=WHEN.replace(tzinfo=None))).canonical(1)
    assert naive == prepare(event()).canonical(1)


def test_oversized_detail_is_truncated_and_marked() -> None:
    p = prepare(event(detail={"blob": "x" * 1000, "more": list(range(3000))}), Limits(max_detail_bytes=4096))
    detail = p.event.detail
    assert detail["_truncated"] is True
    original = detail["_original_size"]
    assert isinstance(original, int)
    assert original > 4096
    assert len(p.canonical(1)) < 4096 + 600
    assert json.loads(p.canonical(1))["detail"]["_truncated"] is True


def test_overlong_string_is_cut_and_marked() -> None:
    p = prepare(event(actor=Actor("a" * 5000)), Limits(max_string=100))
    assert p.event.actor.principal_id == "a" * 100
    assert p.event.detail["_cut"] == ["actor.principal_id"]


def test_non_utf8_strings_are_replaced_and_marked() -> None:
    bad = "caf\udce9"  # what surrogateescape makes of b"caf\xe9"
    p = prepare(event(actor=Actor(bad), detail={"raw": b"\xff\xfe", "name": "\ud800x"}))
    data = p.canonical(3)
    data.decode("utf-8")
    assert p.event.actor.principal_id == "caf\ufffd"
    assert p.event.detail["raw"] == "\ufffd\ufffd"
    assert p.event.detail["name"] == "\ufffdx"
    assert p.event.detail["_replaced"] == ["actor.principal_id", "detail.raw", "detail.name"]


def test_values_json_cannot_carry_are_recorded_as_text_and_marked() -> None:
    p = prepare(event(detail={"n": float("nan"), "s": {1, 2}, "big": 2**70}))
    assert p.event.detail["n"] == "nan"
    assert p.event.detail["s"] == "{1, 2}"
    assert p.event.detail["big"] == str(2**70)
    assert p.event.detail["_replaced"] == ["detail.n", "detail.s", "detail.big"]
    assert rfc8785.dumps(json.loads(p.canonical(1))) == p.canonical(1)


def test_unknown_event_type_is_recorded_and_marked() -> None:
    p = prepare(event(type="study.teleport"))
    assert p.event.type == "study.teleport"
    assert p.event.detail["_unknown_type"] is True
    assert "_unknown_type" not in prepare(event()).event.detail
    assert prepare(event(type="")).event.type == "external.other"


def test_the_type_list_is_documented_and_complete() -> None:
    for name in ["login.success", "study.read", "admin.role.grant", "audit.log.used", "containment.undone"]:
        assert is_known(name)
    assert all(desc and name == name.lower() for name, desc in EVENT_TYPES.items())


def test_decode_refuses_what_is_not_an_event() -> None:
    for data in [b"", b"[]", b'{"seq": 1}', b"\xff"]:
        try:
            decode(data)
        except ValueError:
            continue
        raise AssertionError(data)


def test_outcome_and_strenum_values_are_plain() -> None:
    p = prepare(event(outcome=Outcome.DENIED, detail={"o": Outcome.ERROR}))
    assert json.loads(p.canonical(2))["outcome"] == "denied"
    assert p.event.detail["o"] == "error"


@given(st.dictionaries(st.text(max_size=8), json_values, max_size=5), st.text(max_size=20))
def test_prepared_bytes_are_always_rfc8785(detail: dict[str, Any], name: str) -> None:
    data = prepare(event(detail=detail, actor=Actor(name))).canonical(5)
    # parse_int=float: a float like 2.0**53 is written as an integer, and must read back as a float
    assert rfc8785.dumps(json.loads(data, parse_int=float)) == data


plain_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**54), 2**54) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=6), inner, max_size=3),
    max_leaves=10,
)
short_text = st.text(max_size=10) | st.sampled_from(["", "alice", "10.0.0.1", "x" * 2049])


@given(
    st.dictionaries(st.text(max_size=6), plain_values, max_size=4),
    st.one_of(st.none(), short_text),
    st.lists(short_text, max_size=3),
    st.one_of(st.none(), st.integers(-(2**54), 2**54)),
    st.sampled_from(["study.read", "login.success", "no.such.type"]),
    st.booleans(),
    st.datetimes(timezones=st.just(UTC)),
)
def test_the_fast_path_writes_what_the_cleaning_path_writes(
    detail: dict[str, Any],
    text: str | None,
    roles: list[str],
    number: int | None,
    type_: str,
    decided: bool,
    when: datetime,
) -> None:
    e = event(
        type=type_,
        occurred_at=when,
        detail=detail,
        actor=Actor(text, tuple(roles), ip=text, auth_strength=number),
        objects=ObjectRef(patient_id=text, count=number),
        decision=DecisionRef("permit", tuple(roles), agreement=text) if decided else None,
    )
    fast = _prepare_clean(e, Limits())
    slow = _prepare_any(e, Limits())
    assert fast is None or (fast.canonical(7), fast.occurred_us) == (slow.canonical(7), slow.occurred_us)
    assert prepare(e).canonical(7) == slow.canonical(7)
    assert prepare(e).recorded(7) == slow.recorded(7)
    assert slow.occurred_us == to_us(when)


@given(st.datetimes(timezones=st.just(UTC)))
def test_the_time_is_written_as_isoformat_in_utc_by_both_paths(when: datetime) -> None:
    written = when.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z"
    fast = _prepare_clean(event(occurred_at=when), Limits())
    assert fast is not None
    assert json.loads(fast.canonical(1))["occurred_at"] == written
    assert json.loads(_prepare_any(event(occurred_at=when), Limits()).canonical(1))["occurred_at"] == written


def test_the_fast_path_takes_the_common_event() -> None:
    assert _prepare_clean(event(), Limits()) is not None
    assert _prepare_clean(event(detail={"f": 1.5}), Limits()) is None  # floats take the RFC 8785 encoder


def test_the_fast_path_takes_non_ascii_detail_and_leaves_what_it_cannot_write_exactly() -> None:
    assert _prepare_clean(event(detail={"name": "Müller", "note": "数据", "k\u00e9": ["ü"]}), Limits()) is not None
    refused = [
        {"f": 2.0},  # a float that equals an int
        {"n": 2**53},
        {"s": "x" * 2049},  # over Limits.max_string
        {"x" * 2049: 1},
        {"t": ("a", "b")},  # written as a list: would read back as something else
        {"b": b"raw"},
        {"d": datetime(2026, 1, 1, tzinfo=UTC)},
        {1: "int key"},
        {"s": {"a", "b"}},
        {"lone": "\ud800"},
        {"\ue000": 1, "\U0001f600": 2},  # RFC 8785 sorts these two keys the other way round
    ]
    for detail in refused:
        assert _prepare_clean(event(detail=detail), Limits()) is None, detail
        assert rfc8785.dumps(json.loads(prepare(event(detail=detail)).canonical(1))) == prepare(
            event(detail=detail)
        ).canonical(1)
    deep: dict[str, Any] = {}
    inner = deep
    for _ in range(12):  # deeper than the fast path reads
        inner["k"] = inner = {}
    assert _prepare_clean(event(detail=deep), Limits()) is None
    assert json.loads(prepare(event(detail=deep)).canonical(1))["detail"] == deep


@settings(deadline=None)  # the first example of each limit builds that limit's reader
@given(st.dictionaries(st.text(max_size=4), plain_values, max_size=4), st.sampled_from([0, 3, 6]))
def test_the_detail_limit_holds_on_both_paths(detail: dict[str, Any], limit: int) -> None:
    e = event(detail=detail)
    fast = _prepare_clean(e, Limits(max_string=limit))
    slow = _prepare_any(e, Limits(max_string=limit))
    assert fast is None or fast.canonical(3) == slow.canonical(3)


def test_a_prepared_event_rebuilt_from_its_parts_writes_the_same_row_and_reads_back() -> None:
    for e in (event(), event(actor=Actor("x" * 5000), detail={"raw": b"\xff"}), event(type="study.teleport")):
        original = prepare(e, Limits(max_string=100))
        rebuilt = Prepared.from_parts(*original.parts())
        assert rebuilt.canonical(9) == original.canonical(9)
        assert rebuilt.columns == original.columns == (
            original.event.type, original.event.outcome.value, original.event.actor.principal_id,
            original.event.actor.ip, original.event.objects.patient_id, original.event.objects.study_uid,
        )  # fmt: skip
        assert rebuilt.event == original.event  # read back from the canonical bytes
        assert rebuilt.recorded(9) == original.recorded(9)
