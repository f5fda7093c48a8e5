"""The monitor's repository: cursor + engine checkpoint, alerts, incidents, deliveries.

``commit`` writes a batch's alerts (upserted by ``Alert.key``), their incidents, their
notification deliveries and the new cursor with the engine snapshot in ONE transaction,
so that after a crash the monitor resumes exactly where the last commit left it.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Connection, Engine, func, insert, select, update

from pacsguard.clock import utc
from pacsguard.monitor.alert_search import AlertFilter, after_condition, decode_cursor
from pacsguard.monitor.alerts import Alert
from pacsguard.monitor.incidents import Incident, IncidentState, Step
from pacsguard.monitor.rules import Response, Severity
from pacsguard.storage.monitor_tables import monitor_alerts as ta
from pacsguard.storage.monitor_tables import monitor_cursor as tc
from pacsguard.storage.monitor_tables import monitor_deliveries as td
from pacsguard.storage.monitor_tables import monitor_incidents as ti

__all__ = ["Checkpoint", "Delivery", "MonitorStore", "StoredAlert", "alert_id"]

CURSOR = "live"


def alert_id(key: str) -> str:
    """The public id of the alert with ``key`` (``Alert.key`` holds ``/`` and ``=``, so the
    API names alerts by this short digest instead)."""
    return "alr-" + hashlib.sha256(key.encode()).hexdigest()[:16]


@dataclass(frozen=True, slots=True)
class Checkpoint:
    """The durable cursor (last consumed seq) and the engine state that goes with it."""

    last_seq: int
    snapshot: dict[str, Any]
    updated_at: datetime


@dataclass(frozen=True, slots=True)
class StoredAlert:
    """An alert as stored: when, whether it was live, its incident, whether handled,
    who acknowledged it when."""

    alert: Alert
    stored_at: datetime
    live: bool
    incident_id: str | None
    handled_at: datetime | None
    acknowledged_at: datetime | None = None
    acknowledged_by: str | None = None

    @property
    def id(self) -> str:
        """The public id (``alert_id`` of the key)."""
        return alert_id(self.alert.key)

    @property
    def state(self) -> str:
        """``acknowledged``, ``historical`` (beyond the live horizon: never notified nor
        contained) or ``open``."""
        if self.acknowledged_at is not None:
            return "acknowledged"
        return "open" if self.live else "historical"

    @property
    def seconds_to_alert(self) -> float:
        """From the first evidence event to the alert being stored (wall time)."""
        return (self.stored_at - self.alert.first_event_at).total_seconds()


@dataclass(frozen=True, slots=True)
class Delivery:
    """One notification of one alert on one channel, and how its attempts went."""

    id: int
    alert_key: str
    channel: str
    state: str
    attempts: int
    next_at: datetime
    last_error: str | None
    delivered_at: datetime | None


class MonitorStore:
    """Reads and writes the monitor tables of a migrated database."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def checkpoint(self) -> Checkpoint | None:
        """The last committed cursor and snapshot, or ``None`` before the first commit."""
        with self._engine.connect() as conn:
            row = conn.execute(select(tc).where(tc.c.name == CURSOR)).first()
        if row is None:
            return None
        return Checkpoint(row.last_seq, json.loads(row.snapshot), utc(row.updated_at))

    def commit(
        self,
        alerts: Sequence[tuple[Alert, bool]],
        incidents: Mapping[str, Incident],
        joined: Mapping[str, str],
        channels: Mapping[str, Sequence[str]],
        checkpoint: Checkpoint,
    ) -> int:
        """Write alerts ``(alert, live)`` not stored yet, the incidents, one delivery per
        live alert and channel in ``channels[alert.key]``, and the checkpoint, atomically.
        Returns how many alerts were new."""
        now = checkpoint.updated_at
        with self._engine.begin() as conn:
            known = _known_keys(conn, [a.key for a, _ in alerts])
            fresh = [(a, live) for a, live in alerts if a.key not in known]
            for alert, live in fresh:
                conn.execute(insert(ta).values(_alert_row(alert, live, now, joined.get(alert.key))))
                for channel in channels.get(alert.key, ()) if live else ():
                    conn.execute(insert(td).values(_delivery_row(alert.key, channel, now)))
            for incident in incidents.values():
                _write_incident(conn, incident)
            _write_cursor(conn, checkpoint)
        return len(fresh)

    def alert(self, key: str) -> StoredAlert | None:
        """The stored alert with this key, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(ta).where(ta.c.key == key)).first()
        return None if row is None else _stored(row)

    def alerts(self, *, subject: str | None = None, limit: int = 1000) -> list[StoredAlert]:
        """Stored alerts, newest trigger first, optionally about one subject."""
        query = select(ta).order_by(ta.c.trigger_seq.desc(), ta.c.key).limit(limit)
        if subject is not None:
            query = query.where(ta.c.subject == subject)
        with self._engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query)]

    def alert_by_id(self, public_id: str) -> StoredAlert | None:
        """The stored alert with this public id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(ta).where(ta.c.id == public_id)).first()
        return None if row is None else _stored(row)

    def search_alerts(self, where: AlertFilter, *, after: str | None = None, limit: int = 50) -> list[StoredAlert]:
        """Alerts matching ``where``, newest trigger first, after the paging cursor
        ``after`` (see ``alert_search``). Raises ``IncidentError`` for a bad cursor or state."""
        query = select(ta).where(*where.conditions()).order_by(ta.c.trigger_seq.desc(), ta.c.key).limit(limit)
        if after is not None:
            query = query.where(after_condition(decode_cursor(after)))
        with self._engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query)]

    def acknowledge(self, public_id: str, *, by: str, at: datetime) -> bool:
        """Record that ``by`` acknowledged the alert; the first acknowledgement stands.
        Returns whether this call recorded it."""
        with self._engine.begin() as conn:
            done = conn.execute(
                update(ta).where(ta.c.id == public_id, ta.c.acknowledged_at.is_(None))
                .values(acknowledged_at=at, acknowledged_by=by)
            )  # fmt: skip
        return bool(done.rowcount)

    def alert_states(self) -> dict[str, int]:
        """How many stored alerts are open, acknowledged and historical."""
        acked = ta.c.acknowledged_at.is_not(None)
        query = select(ta.c.live, acked, func.count()).group_by(ta.c.live, acked)
        out: dict[str, int] = {}
        with self._engine.connect() as conn:
            for live, acknowledged, n in conn.execute(query):
                state = "acknowledged" if acknowledged else ("open" if live else "historical")
                out[state] = out.get(state, 0) + int(n)
        return out

    def alert_count(self) -> int:
        """How many alerts are stored."""
        with self._engine.connect() as conn:
            return int(conn.execute(select(func.count()).select_from(ta)).scalar_one())

    def unhandled(self) -> list[StoredAlert]:
        """Live alerts whose containment and incident steps have not run yet."""
        query = select(ta).where(ta.c.live.is_(True), ta.c.handled_at.is_(None)).order_by(ta.c.trigger_seq)
        with self._engine.connect() as conn:
            return [_stored(r) for r in conn.execute(query)]

    def mark_handled(self, key: str, at: datetime) -> None:
        """Record that the alert's follow-up (containment, evidence, scope) ran."""
        with self._engine.begin() as conn:
            conn.execute(update(ta).where(ta.c.key == key).values(handled_at=at))

    def open_incidents(self, subjects: Iterable[str]) -> dict[str, Incident]:
        """The unresolved incident of each subject that has one."""
        wanted = sorted(set(subjects))
        if not wanted:
            return {}
        query = select(ti).where(ti.c.subject.in_(wanted), ti.c.state != IncidentState.RESOLVED.value)
        with self._engine.connect() as conn:
            return {r.subject: _incident(r) for r in conn.execute(query.order_by(ti.c.opened_at))}

    def incident(self, incident_id: str) -> Incident | None:
        """The incident with this id, or ``None``."""
        with self._engine.connect() as conn:
            row = conn.execute(select(ti).where(ti.c.id == incident_id)).first()
        return None if row is None else _incident(row)

    def incidents(self, *, state: IncidentState | None = None) -> list[Incident]:
        """Incidents, newest first, optionally in one state."""
        query = select(ti).order_by(ti.c.opened_at.desc())
        if state is not None:
            query = query.where(ti.c.state == state.value)
        with self._engine.connect() as conn:
            return [_incident(r) for r in conn.execute(query)]

    def save_incident(self, incident: Incident) -> None:
        """Write one incident (insert or replace)."""
        with self._engine.begin() as conn:
            _write_incident(conn, incident)

    def due(self, now: datetime, limit: int = 50) -> list[Delivery]:
        """Pending deliveries whose next attempt is due."""
        query = select(td).where(td.c.state == "pending", td.c.next_at <= now).order_by(td.c.id).limit(limit)
        with self._engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def deliveries(self, *, alert_key: str | None = None) -> list[Delivery]:
        """Every delivery (optionally of one alert), oldest first."""
        query = select(td).order_by(td.c.id)
        if alert_key is not None:
            query = query.where(td.c.alert_key == alert_key)
        with self._engine.connect() as conn:
            return [_delivery(r) for r in conn.execute(query)]

    def record_attempt(
        self, delivery_id: int, *, ok: bool, at: datetime, error: str | None, retry_in: timedelta | None
    ) -> None:
        """Record one attempt: delivered, retried after ``retry_in``, or given up (``None``)."""
        values: dict[str, Any] = {"attempts": td.c.attempts + 1, "last_error": error}
        if ok:
            values.update(state="delivered", delivered_at=at)
        elif retry_in is None:
            values.update(state="failed")
        else:
            values.update(next_at=at + retry_in)
        with self._engine.begin() as conn:
            conn.execute(update(td).where(td.c.id == delivery_id).values(**values))


def _known_keys(conn: Connection, keys: list[str]) -> set[str]:
    if not keys:
        return set()
    return set(conn.execute(select(ta.c.key).where(ta.c.key.in_(keys))).scalars())


def _alert_row(alert: Alert, live: bool, now: datetime, incident: str | None) -> dict[str, Any]:
    return {
        "key": alert.key,
        "id": alert_id(alert.key),
        "rule_id": alert.rule_id,
        "severity": alert.severity.value,
        "subject": alert.subject,
        "trigger_seq": alert.trigger_seq,
        "first_event_at": alert.first_event_at,
        "triggered_at": alert.triggered_at,
        "stored_at": now,
        "time_to_alert_s": (now - alert.first_event_at).total_seconds(),
        "live": live,
        "handled_at": None if live else now,
        "incident_id": incident,
        "body": alert.to_json(),
    }


def _delivery_row(key: str, channel: str, now: datetime) -> dict[str, Any]:
    # The dashboard reads the alerts table itself: storing the alert is its delivery.
    done = channel == "dashboard"
    return {
        "alert_key": key,
        "channel": channel,
        "state": "delivered" if done else "pending",
        "attempts": 0,
        "next_at": now,
        "delivered_at": now if done else None,
        "created_at": now,
    }


def _write_cursor(conn: Connection, cp: Checkpoint) -> None:
    values = {"last_seq": cp.last_seq, "snapshot": json.dumps(cp.snapshot), "updated_at": cp.updated_at}
    done = conn.execute(update(tc).where(tc.c.name == CURSOR).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(tc).values(name=CURSOR, **values))


def _write_incident(conn: Connection, incident: Incident) -> None:
    values = {
        "subject": incident.subject,
        "state": incident.state.value,
        "severity": incident.severity.value,
        "owner": incident.owner,
        "opened_at": incident.opened_at,
        "first_event_at": incident.first_event_at,
        "first_alert_at": incident.first_alert_at,
        "acknowledged_at": incident.acknowledged_at,
        "contained_at": incident.contained_at,
        "resolved_at": incident.resolved_at,
        "evidence_from": incident.evidence_from,
        "evidence_to": incident.evidence_to,
        "checklist": [s.to_json() for s in incident.checklist],
        "scope": dict(incident.scope) if incident.scope is not None else None,
        "head": dict(incident.head) if incident.head is not None else None,
    }
    done = conn.execute(update(ti).where(ti.c.id == incident.id).values(**values))
    if done.rowcount == 0:
        conn.execute(insert(ti).values(id=incident.id, **values))


def _when(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


def _stored(row: Any) -> StoredAlert:
    body = row.body
    alert = Alert(
        rule_id=body["rule_id"],
        title=body["title"],
        severity=Severity(body["severity"]),
        subject=body["subject"],
        evidence=tuple(body["evidence"]),
        first_event_at=datetime.fromisoformat(body["first_event_at"]),
        triggered_at=datetime.fromisoformat(body["triggered_at"]),
        response=Response(body["response"]),
        actions=tuple(body["actions"]),
        channels=tuple(body["channels"]),
        owner=body["owner"],
        kind=body["kind"],
        escalated_by=body.get("escalated_by"),
        escalated_from=body.get("escalated_from"),
        facts=body.get("facts") or {},
    )
    return StoredAlert(
        alert,
        utc(row.stored_at),
        bool(row.live),
        row.incident_id,
        _when(row.handled_at),
        _when(row.acknowledged_at),
        row.acknowledged_by,
    )


def _incident(row: Any) -> Incident:
    return Incident(
        id=row.id,
        subject=row.subject,
        state=IncidentState(row.state),
        severity=Severity(row.severity),
        owner=row.owner,
        opened_at=utc(row.opened_at),
        first_event_at=utc(row.first_event_at),
        first_alert_at=utc(row.first_alert_at),
        evidence_from=row.evidence_from,
        evidence_to=row.evidence_to,
        checklist=tuple(Step.from_json(s) for s in row.checklist),
        acknowledged_at=_when(row.acknowledged_at),
        contained_at=_when(row.contained_at),
        resolved_at=_when(row.resolved_at),
        scope=row.scope,
        head=row.head,
    )


def _delivery(row: Any) -> Delivery:
    return Delivery(
        row.id,
        row.alert_key,
        row.channel,
        row.state,
        row.attempts,
        utc(row.next_at),
        row.last_error,
        _when(row.delivered_at),
    )
