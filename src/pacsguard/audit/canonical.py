"""Canonical bytes of an ``AuditEvent`` (RFC 8785 JSON) and the cleaning that precedes them.

The JSON form has eight keys: ``actor``, ``decision``, ``detail``, ``objects``,
``occurred_at`` (UTC, ISO 8601 with microseconds and ``Z``), ``outcome``, ``seq`` and
``type``; empty and ``None`` fields of actor, objects and decision are left out.

Recording never fails on bad input; it records the event and marks what it changed:

* a detail map larger than ``Limits.max_detail_bytes`` becomes
  ``{"_truncated": true, "_original_size": N, "_preview": "..."}``;
* a string that is not valid Unicode (lone surrogates, ``bytes``) is decoded with
  replacement characters and its path is listed in ``detail["_replaced"]``;
* a value JSON cannot carry (a set, NaN, an object) is recorded as its text, also listed;
* an overlong string field is cut at ``Limits.max_string`` and listed in
  ``detail["_cut"]``;
* an event type outside ``EVENT_TYPES`` gets ``detail["_unknown_type"] = true``.

Speed: ``rfc8785.dumps`` is the reference. For values without floats, integers beyond
±2^53 or characters from U+E000 up (nearly every event), ``json.dumps(sort_keys=True)``
writes the same bytes five times faster, and msgspec (the fast path's detail) faster
again; property tests check all three agree.
"""

from __future__ import annotations

import json
import json.encoder
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import lru_cache
from typing import Annotated, Any

import msgspec
import rfc8785

from pacsguard.audit.event_types import is_known
from pacsguard.domain.events import Actor, AuditEvent, DecisionRef, JsonValue, ObjectRef, Outcome

__all__ = [
    "Columns",
    "Limits",
    "Prepared",
    "canonical_bytes",
    "canonical_json",
    "decode",
    "from_us",
    "prepare",
    "to_us",
]

_SAFE_INT = 2**53 - 1
_escape: Callable[[str], str] = json.encoder.encode_basestring  # what json.dumps(ensure_ascii=False) writes
_ACTOR_KEYS = tuple((k, f'"{k}":') for k in sorted(Actor.__slots__))
_OBJECT_KEYS = tuple((k, f'"{k}":') for k in sorted(ObjectRef.__slots__))
_DECISION_KEYS = tuple((k, f'"{k}":') for k in sorted(DecisionRef.__slots__))
_OUTCOME_JSON = {o: f'"outcome":"{o.value}"' for o in Outcome}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_US = timedelta(microseconds=1)


@dataclass(frozen=True, slots=True)
class Limits:
    """Bounds applied before an event is recorded."""

    max_detail_bytes: int = 8192
    max_string: int = 2048
    max_type: int = 64


def canonical_json(value: Any, *, plain: bool | None = None) -> bytes:
    """RFC 8785 canonical JSON of ``value`` (a fast path for the common case).

    ``plain=True`` promises that ``value`` holds no float, no non-ASCII key and no
    integer beyond ±2^53 (the caller checked while building it).
    """
    if plain if plain is not None else _plain(value):
        return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    return rfc8785.dumps(value)


def _plain(value: Any) -> bool:
    if value is None or isinstance(value, (str, bool)):
        return True
    if isinstance(value, int):
        return -_SAFE_INT <= value <= _SAFE_INT
    if isinstance(value, list):
        return all(_plain(v) for v in value)
    if isinstance(value, dict):
        return all(k.isascii() and _plain(v) for k, v in value.items())
    return False


Columns = tuple[str, str, str | None, str | None, str | None, str | None]
"""The indexed values of an event's row: type, outcome, principal_id, ip, patient_id, study_uid."""


class Prepared:
    """A cleaned event whose canonical bytes only lack the sequence number.

    A plain class, not a frozen dataclass: one is made per appended event, and a frozen
    dataclass's ``__init__`` costs several times as much. Treat it as immutable.

    ``columns`` are the indexed values of its row (type, outcome, principal_id, ip,
    patient_id, study_uid). Made by ``from_parts`` (a parsing process sent the parts)
    it holds no event: ``event`` is then read back from the canonical bytes when asked.
    """

    __slots__ = ("_event", "columns", "head", "occurred_us", "type_json")

    def __init__(self, event: AuditEvent, head: bytes, type_json: bytes, occurred_us: int) -> None:
        self._event: AuditEvent | None = event  # the cleaned event
        self.head = head  # the canonical bytes up to the sequence number
        self.type_json = type_json  # the type as a JSON string: the canonical bytes after it
        self.occurred_us = occurred_us  # occurred_at in microseconds since 1970 (UTC)
        actor, objects = event.actor, event.objects
        self.columns: Columns = (
            event.type,
            event.outcome.value,
            actor.principal_id,
            actor.ip,
            objects.patient_id,
            objects.study_uid,
        )

    @classmethod
    def from_parts(cls, head: bytes, type_json: bytes, occurred_us: int, columns: Columns) -> Prepared:
        """A ``Prepared`` from the parts another ``Prepared`` gave (``parts()``), e.g. made
        in a parsing process; the bytes are trusted to be what ``prepare`` wrote."""
        self = cls.__new__(cls)
        self._event, self.head, self.type_json, self.occurred_us, self.columns = (
            None, head, type_json, occurred_us, columns
        )  # fmt: skip
        return self

    def parts(self) -> tuple[bytes, bytes, int, Columns]:
        """What ``from_parts`` takes: plain values, cheap to send to another process."""
        return self.head, self.type_json, self.occurred_us, self.columns

    @property
    def event(self) -> AuditEvent:
        """The cleaned event (without ``seq``)."""
        if self._event is None:
            e = decode(self.canonical(0))
            self._event = AuditEvent(e.type, e.occurred_at, e.outcome, e.actor, e.objects, e.decision, e.detail)
        return self._event

    def canonical(self, seq: int) -> bytes:
        """The canonical bytes of the event once the log has given it ``seq``."""
        return b'%s,"seq":%d,"type":%s}' % (self.head, seq, self.type_json)

    def recorded(self, seq: int) -> AuditEvent:
        """The cleaned event carrying its sequence number."""
        e = self.event  # positional, not dataclasses.replace: this runs once per appended event
        return AuditEvent(e.type, e.occurred_at, e.outcome, e.actor, e.objects, e.decision, e.detail, seq)


def prepare(event: AuditEvent, limits: Limits = Limits()) -> Prepared:
    """Clean ``event`` (bounds, Unicode, unknown type) and encode all of it but ``seq``."""
    return _prepare_clean(event, limits) or _prepare_any(event, limits)


def _prepare_clean(event: AuditEvent, limits: Limits) -> Prepared | None:
    """The fast path, for an event that needs no cleaning (nearly all); ``None`` if it might.

    It checks instead of rebuilding: the event itself is kept (no dataclass is copied),
    actor, objects and decision are written from precomputed key fragments in sorted
    order, and the detail map is written and checked in C (``_plain_detail``). Actor,
    objects and decision accept only exact ``str`` (ASCII, within the limits), ``int``
    (within ±2^53) and tuples of such strings; the detail only what RFC 8785 and msgspec
    write alike. With a known type, a UTC time and an ``Outcome``, the event is taken;
    anything else takes ``_prepare_any``, and property tests check both write the same bytes.
    """
    event_type, occurred, outcome, detail = event.type, event.occurred_at, event.outcome, event.detail
    if (
        type(event_type) is not str
        or not event_type.isascii()
        or len(event_type) > limits.max_type
        or not is_known(event_type)
        or occurred.tzinfo is not UTC
        or type(outcome) is not Outcome
        or type(detail) is not dict
    ):
        return None
    limit = limits.max_string
    detail_json = _plain_detail(detail, limit)
    if detail_json is None:
        return None
    actor = _fragment(event.actor, _ACTOR_KEYS, limit)
    objects = _fragment(event.objects, _OBJECT_KEYS, limit)
    decision = "null" if event.decision is None else _fragment(event.decision, _DECISION_KEYS, limit)
    if actor is None or objects is None or decision is None:
        return None
    occurred_us = to_us(occurred)
    encoded = b"".join(  # the detail stays bytes (it may be long); the rest is short ASCII
        (
            f'{{"actor":{actor},"decision":{decision},"detail":'.encode(),
            detail_json,
            f',"objects":{objects},"occurred_at":"{_timestamp(occurred_us)}",{_OUTCOME_JSON[outcome]}'.encode(),
        )
    )
    if len(encoded) > limits.max_detail_bytes:
        return None  # the detail may need bounding
    return Prepared(event, encoded, _escape(event_type).encode("utf-8"), occurred_us)


def to_us(when: datetime) -> int:
    """Microseconds since 1970-01-01 UTC, exactly (how ``occurred_at`` is stored and written)."""
    return (when - _EPOCH) // _US


def from_us(us: int) -> datetime:
    return _EPOCH + timedelta(microseconds=us)


def _timestamp(us: int) -> str:
    """``occurred_at`` as written: UTC, ISO 8601 with microseconds and ``Z``.

    Events arrive in time order, so the text up to the second comes from a small cache
    and only the microseconds are formatted (a third of ``isoformat``'s cost).
    """
    seconds, micro = divmod(us, 1_000_000)
    return f"{_second(seconds)}.{micro:06d}Z"


@lru_cache(maxsize=256)
def _second(seconds: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS`` of ``seconds`` since 1970 (UTC)."""
    return (_EPOCH + timedelta(seconds=seconds)).isoformat()[:19]


def _fragment(value: Any, keys: tuple[tuple[str, str], ...], limit: int) -> str | None:
    """The JSON of an ``Actor``/``ObjectRef``/``DecisionRef`` that needs no cleaning, else ``None``.

    ``keys``: (attribute, its ``"name":`` prefix), in RFC 8785 order (sorted; all ASCII).
    """
    parts: list[str] = []
    for name, prefix in keys:
        v = getattr(value, name)
        if v is None:
            continue
        kind = type(v)
        if kind is str:
            if len(v) > limit or not v.isascii():
                return None
            parts.append(prefix + _escape(v))
        elif kind is int:
            if not -_SAFE_INT <= v <= _SAFE_INT:
                return None
            parts.append(prefix + str(v))
        elif kind is tuple:
            if not v:
                continue
            if not all(type(x) is str and len(x) <= limit and x.isascii() for x in v):
                return None
            parts.append(prefix + "[" + ",".join([_escape(x) for x in v]) + "]")
        else:
            return None
    return "{" + ",".join(parts) + "}"


def _plain_detail(detail: dict[str, Any], limit: int) -> bytes | None:
    """The detail map's JSON if it needs no cleaning and is written exactly as RFC 8785
    writes it, else ``None`` (the cleaning path then takes the event).

    Done in C, not by walking the map in Python (that walk, and json's encoder, were 30
    of the 42 µs a received ATNA message's event took to prepare): msgspec writes the
    map with sorted keys, then reads the text back against a type that admits only
    ``None``, ``bool``, integers within ±2^53, strings and keys of at most ``limit``
    characters, lists and string-keyed maps, up to ``_DEPTH`` levels (so a float, NaN,
    a long string or a deep nest is refused); and what it reads must equal the map (a
    tuple, a set, a non-string key, ``bytes``, a date or any object msgspec wrote as
    something else is refused; a lone surrogate cannot be written at all). Strings may
    be non-ASCII: both write them as raw UTF-8, and escape the same characters the same
    way. Keys sort the same way unless the text holds a character from U+E000 up (RFC
    8785 sorts UTF-16 code units, msgspec code points: they differ only between those
    and astral characters), so such a text is refused too. Property tests compare this
    path with ``rfc8785`` and with the cleaning path.
    """
    try:
        data = _DETAIL_WRITER.encode(detail)
        if _detail_reader(limit).decode(data) != detail:
            return None
    except (TypeError, ValueError, RecursionError):  # msgspec's errors, UnicodeEncodeError among them
        return None
    if not data.isascii() and max(data) >= 0xEE:  # UTF-8 of U+E000 and up starts with 0xEE..0xF4
        return None
    return data


_DETAIL_WRITER = msgspec.json.Encoder(order="sorted")
_DEPTH = 8  # nesting levels of a detail map the fast path takes (an ingested message's is 6); the
# reader is built once per limit, in 25 ms at 8 levels (each level doubles it)


@lru_cache(maxsize=4)
def _detail_reader(limit: int) -> msgspec.json.Decoder[Any]:
    """A JSON reader of plain detail maps within ``limit`` (see ``_plain_detail``)."""
    text = Annotated[str, msgspec.Meta(max_length=limit)]
    number = Annotated[int, msgspec.Meta(ge=-_SAFE_INT, le=_SAFE_INT)]
    value: Any = None | bool | number | text  # the leaves; msgspec takes no recursive alias, so nest
    for _ in range(_DEPTH):
        value = None | bool | number | text | list[value] | dict[text, value]
    return msgspec.json.Decoder(dict[text, value])


def _prepare_any(event: AuditEvent, limits: Limits) -> Prepared:
    """Clean and encode any event: what ``prepare`` does when ``_prepare_clean`` declines."""
    marks = _Marks(limits)
    actor, actor_json = _clean_object(event.actor, "actor", marks)
    objects, objects_json = _clean_object(event.objects, "objects", marks)
    decision, decision_json = _clean_object(event.decision, "decision", marks) if event.decision else (None, None)
    event_type = marks.text(event.type, "type", limits.max_type) or "external.other"
    detail = marks.mapping(event.detail, "detail")
    if not is_known(event_type):
        detail["_unknown_type"] = True
    detail = marks.finish(detail)
    occurred = event.occurred_at.astimezone(UTC) if event.occurred_at.tzinfo else event.occurred_at.replace(tzinfo=UTC)
    outcome = Outcome(event.outcome)
    form = {
        "actor": actor_json,
        "decision": decision_json,
        "detail": detail,
        "objects": objects_json,
        "occurred_at": occurred.replace(tzinfo=None).isoformat(timespec="microseconds") + "Z",
        "outcome": outcome.value,
        "type": event_type,
    }
    encoded = canonical_json(form, plain=marks.plain)
    if len(encoded) > limits.max_detail_bytes and (bounded := marks.bound(detail)) is not detail:
        detail = form["detail"] = bounded
        encoded = canonical_json(form)
    # "type" sorts last and its value is a string, so its key is the last ',"type":'.
    cut = encoded.rindex(b',"type":')
    clean = AuditEvent(event_type, occurred, outcome, actor, objects, decision, detail)
    return Prepared(clean, encoded[:cut], encoded[cut + 8 : -1], to_us(occurred))


def canonical_bytes(event: AuditEvent, limits: Limits = Limits()) -> bytes:
    """The canonical bytes of a recorded event; raises ``ValueError`` if ``seq`` is unset."""
    if event.seq is None:
        raise ValueError("the event has no sequence number yet")
    return prepare(event, limits).canonical(event.seq)


def decode(data: bytes) -> AuditEvent:
    """The event stored as ``data``; raises ``ValueError`` if it is not a canonical event."""
    try:
        raw = json.loads(data)
        event = AuditEvent(
            type=str(raw["type"]),
            occurred_at=datetime.strptime(raw["occurred_at"], "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC),
            outcome=Outcome(raw["outcome"]),
            actor=Actor(**_tuples(raw["actor"], ("roles",))),
            objects=ObjectRef(**raw["objects"]),
            decision=DecisionRef(**_tuples(raw["decision"], ("rule_ids", "delegation"))) if raw["decision"] else None,
            detail=dict(raw["detail"]),
            seq=int(raw["seq"]),
        )
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise ValueError(f"not a canonical audit event: {exc}") from exc
    if set(raw) != {"actor", "decision", "detail", "objects", "occurred_at", "outcome", "seq", "type"}:
        raise ValueError("not a canonical audit event: unexpected keys")
    return event


def _tuples(raw: Mapping[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {k: tuple(v) if k in names else v for k, v in raw.items()}


def _clean_object(value: Any, path: str, marks: _Marks) -> tuple[Any, dict[str, Any]]:
    """The cleaned dataclass (the same object if nothing changed) and its JSON form."""
    form: dict[str, Any] = {}
    changed = False
    limit = marks.limits.max_string
    for name in value.__slots__:
        v = getattr(value, name)
        if v is None or v == ():
            continue
        if (type(v) is str and len(v) <= limit and v.isascii()) or (type(v) is int and -_SAFE_INT <= v <= _SAFE_INT):
            form[name] = v
        elif isinstance(v, tuple):
            clean = [marks.text(x, f"{path}.{name}", limit) for x in v]
            changed = changed or clean != list(v)
            form[name] = clean
        else:
            in_range = isinstance(v, int) and not isinstance(v, bool) and -_SAFE_INT <= v <= _SAFE_INT
            clean_value: str | int = int(v) if in_range else marks.text(v, f"{path}.{name}", limit)
            changed = changed or clean_value != v or type(clean_value) is not type(v)
            form[name] = clean_value
    if changed:
        value = type(value)(**{k: tuple(v) if isinstance(v, list) else v for k, v in form.items()})
    return value, form


class _Marks:
    """Collects what cleaning changed, for the markers in ``detail``."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.replaced: list[str] = []
        self.cut: list[str] = []
        self.plain = True  # no floats, no non-ASCII keys: the fast JSON path is exact

    def text(self, value: object, path: str, limit: int) -> str:
        if isinstance(value, bytes):
            self.replaced.append(path)
            value = value.decode("utf-8", "replace")
        elif not isinstance(value, str):
            self.replaced.append(path)
            value = str(value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            self.replaced.append(path)
            value = "".join("\ufffd" if "\ud800" <= c <= "\udfff" else c for c in value)
        if len(value) > limit:
            self.cut.append(path)
            value = value[:limit]
        return str(value)

    def value(self, value: object, path: str) -> JsonValue:  # noqa: PLR0911 - one case per JSON type
        if value is None or isinstance(value, bool):
            return value
        if isinstance(value, (int, float)):
            if isinstance(value, float) and math.isfinite(value):
                self.plain = False
                return value
            if not isinstance(value, float) and -_SAFE_INT <= value <= _SAFE_INT:
                return int(value)
            self.replaced.append(path)
            return repr(value)
        if isinstance(value, Mapping):
            return self.mapping(value, path)
        if isinstance(value, (list, tuple)):
            return [self.value(v, f"{path}[{i}]") for i, v in enumerate(value)]
        if isinstance(value, (str, bytes)):
            return self.text(value, path, self.limits.max_string)
        self.replaced.append(path)
        return self.text(repr(value), path, self.limits.max_string)

    def mapping(self, value: Mapping[Any, Any], path: str) -> dict[str, JsonValue]:
        out = {self.text(k, path, self.limits.max_string): self.value(v, f"{path}.{k}") for k, v in value.items()}
        self.plain = self.plain and all(k.isascii() for k in out)
        return out

    def finish(self, detail: dict[str, JsonValue]) -> dict[str, JsonValue]:
        if self.replaced:
            detail["_replaced"] = list(dict.fromkeys(self.replaced))
        if self.cut:
            detail["_cut"] = list(dict.fromkeys(self.cut))
        return detail

    def bound(self, detail: dict[str, JsonValue]) -> dict[str, JsonValue]:
        size = len(canonical_json(detail))
        if size <= self.limits.max_detail_bytes:
            return detail
        keep = {k: detail[k] for k in ("_unknown_type", "_replaced", "_cut") if k in detail}
        preview = canonical_json(detail).decode("utf-8")[: max(0, self.limits.max_detail_bytes // 4)]
        truncated: dict[str, JsonValue] = {"_truncated": True, "_original_size": size, "_preview": preview}
        return {**truncated, **{k: v for k, v in keep.items() if len(canonical_json(v)) < 1024}}
