"""Flat-file exports of audit events: JSONL (lossless, round-trips) and CSV (for people).

JSONL keeps every field of an ``AuditEvent``; ``event_from_json`` reads it back to an
equal event. Strings are written with ASCII escapes, so even a lone surrogate (a
non-UTF-8 byte decoded with ``surrogateescape``) survives the trip.

CSV is for spreadsheets, so it is defended against formula injection (OWASP "CSV
Injection"): a text cell that starts with ``=``, ``+``, ``-``, ``@``, tab or carriage
return gets a leading apostrophe. Characters that cannot be encoded in UTF-8 become ``?``.
"""

from __future__ import annotations

import csv
import json
import math
from collections.abc import Iterable, Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any, Protocol

from pacsguard.domain import Actor, AuditEvent, DecisionRef, ObjectRef, Outcome
from pacsguard.errors import AuditExportError

__all__ = [
    "CSV_COLUMNS",
    "EventSource",
    "JsonlEventSource",
    "event_from_json",
    "event_to_json",
    "read_jsonl",
    "within",
    "write_csv",
    "write_jsonl",
]


class EventSource(Protocol):
    """Where an export reads events from: the audit log, or a JSONL file it wrote."""

    def iter_events(self, since: datetime | None, until: datetime | None) -> Iterator[AuditEvent]: ...


class JsonlEventSource:
    """Events from a JSONL export (``write_jsonl``), filtered by time."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def iter_events(self, since: datetime | None, until: datetime | None) -> Iterator[AuditEvent]:
        """The file's events within the bounds; raises ``AuditExportError`` naming file and line."""
        try:
            with self.path.open(encoding="utf-8", errors="surrogateescape") as f:
                yield from within(read_jsonl(f, str(self.path)), since, until)
        except OSError as exc:
            raise AuditExportError(f"cannot read {self.path}: {exc.strerror or exc}") from exc


def within(events: Iterable[AuditEvent], since: datetime | None, until: datetime | None) -> Iterator[AuditEvent]:
    """The events with ``since <= occurred_at < until``; a missing bound is open."""
    for event in events:
        moment = _aware(event.occurred_at)
        if since is not None and moment < _aware(since):
            continue
        if until is not None and moment >= _aware(until):
            continue
        yield event


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def event_to_json(event: AuditEvent) -> dict[str, Any]:
    """Every field of ``event`` as JSON-compatible values."""
    d = event.decision
    return {
        "seq": event.seq,
        "type": event.type,
        "occurred_at": event.occurred_at.isoformat(),
        "outcome": event.outcome.value,
        "actor": {**_fields(event.actor), "roles": list(event.actor.roles)},
        "objects": _fields(event.objects),
        "decision": None
        if d is None
        else {**_fields(d), "rule_ids": list(d.rule_ids), "delegation": list(d.delegation)},
        "detail": _finite(dict(event.detail)),
    }


def _finite(value: Any) -> Any:
    """JSON has no NaN or infinity; such floats (never stored by the log) become strings."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_finite(v) for v in value]
    return value


_OUTCOMES = {outcome.value: outcome for outcome in Outcome}


def _fields(value: Actor | ObjectRef | DecisionRef) -> dict[str, Any]:
    return {name: getattr(value, name) for name in value.__slots__}


def event_from_json(data: Mapping[str, Any]) -> AuditEvent:
    """The event ``event_to_json`` wrote. Raises ``AuditExportError`` naming what is wrong.

    ``audit import`` runs this once per line, so it builds the event positionally and
    looks the outcome up in a table (the enum's own lookup is the slow path, kept for
    its error message).
    """
    try:
        seq = data["seq"]
        if seq is not None and (not isinstance(seq, int) or isinstance(seq, bool)):
            raise TypeError(f"seq must be an integer, not {seq!r}")
        actor, decision, outcome = data["actor"], data["decision"], data["outcome"]
        return AuditEvent(
            str(data["type"]),
            datetime.fromisoformat(data["occurred_at"]),
            _OUTCOMES.get(outcome) or Outcome(outcome),
            Actor(**{**actor, "roles": tuple(actor["roles"])}),
            ObjectRef(**data["objects"]),
            None
            if decision is None
            else DecisionRef(
                **{**decision, "rule_ids": tuple(decision["rule_ids"]), "delegation": tuple(decision["delegation"])}
            ),
            dict(data["detail"]),
            seq,
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise AuditExportError(f"not an exported audit event: {type(exc).__name__}: {exc}") from exc


def write_jsonl(events: Iterable[AuditEvent], out: IO[str]) -> int:
    """Write one JSON object per line; returns how many events were written."""
    n = 0
    for event in events:
        out.write(json.dumps(event_to_json(event), ensure_ascii=True, allow_nan=False, separators=(",", ":")))
        out.write("\n")
        n += 1
    return n


def read_jsonl(lines: Iterable[str], name: str = "<jsonl>") -> Iterator[AuditEvent]:
    """Events from JSONL lines. Raises ``AuditExportError`` naming the file and line."""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            data = json.loads(line)
            if not isinstance(data, dict):
                raise AuditExportError("expected a JSON object")
            yield event_from_json(data)
        except (ValueError, AuditExportError) as exc:
            raise AuditExportError(f"{name}:{number}: {exc}") from exc


CSV_COLUMNS = (
    "seq", "occurred_at", "type", "outcome",
    "principal_id", "roles", "actor_zone", "session_id", "ip", "device_id", "user_agent", "country",
    "ae_title", "auth_strength",
    "patient_id", "study_uid", "series_uid", "instance_uid", "count", "bytes", "share_id",
    "target_principal", "object_zone",
    "effect", "rule_ids", "agreement", "delegation", "break_glass_reason",
    "detail",
)  # fmt: skip

_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> str | int:
    if value is None:
        return ""
    if isinstance(value, bool | int):
        return int(value)
    text = str(value).encode("utf-8", "replace").decode("utf-8")
    return "'" + text if text.startswith(_FORMULA_START) else text


def _row(event: AuditEvent) -> list[str | int]:
    a, o, d = event.actor, event.objects, event.decision
    values: list[object] = [
        event.seq, event.occurred_at.isoformat(), event.type, event.outcome.value,
        a.principal_id, ";".join(a.roles), a.zone, a.session_id, a.ip, a.device_id, a.user_agent, a.country,
        a.ae_title, a.auth_strength,
        o.patient_id, o.study_uid, o.series_uid, o.instance_uid, o.count, o.bytes, o.share_id,
        o.target_principal, o.zone,
        d and d.effect, d and ";".join(d.rule_ids), d and d.agreement, d and ";".join(d.delegation),
        d and d.break_glass_reason,
        json.dumps(dict(event.detail), ensure_ascii=False, sort_keys=True) if event.detail else None,
    ]  # fmt: skip
    return [_cell(v) for v in values]


def write_csv(events: Iterable[AuditEvent], out: IO[str]) -> int:
    """Write a header and one row per event; returns how many events were written."""
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    n = 0
    for event in events:
        writer.writerow(_row(event))
        n += 1
    return n
