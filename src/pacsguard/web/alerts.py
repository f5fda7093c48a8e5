"""``/alerts``: the stored alerts, filtered and paged, one alert with its evidence events,
and acknowledging one. Officers only; every read is recorded first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from pacsguard.errors import NotFound
from pacsguard.gateway import Gateway
from pacsguard.gateway.auth import Caller
from pacsguard.monitor.alert_search import AlertFilter, encode_cursor
from pacsguard.monitor.rules import Severity
from pacsguard.monitor.source import event_to_json
from pacsguard.monitor.store import StoredAlert
from pacsguard.web._officer import Desk, in_thread, officer, read_recorded, update_recorded

__all__ = ["AlertDetail", "AlertOut", "AlertPage", "alerts_router"]

MAX_EVIDENCE = 200  # evidence events returned with one alert (the seq numbers are all listed)


class AlertOut(BaseModel):
    """One stored alert. Times of events are event times; ``stored_at`` is when the
    monitor stored it. ``state``: open, acknowledged, or historical (older than the live
    horizon when processed: stored, never notified, never contained)."""

    id: str
    key: str
    rule_id: str
    title: str
    severity: str
    state: str
    subject: str
    subject_fields: dict[str, str]
    kind: str
    response: str
    actions: list[str]
    channels: list[str]
    owner: str
    evidence: list[int]
    first_seq: int
    trigger_seq: int
    first_event_at: datetime
    triggered_at: datetime
    time_to_alert_s: float = Field(description="event time from the first evidence event to the trigger")
    stored_at: datetime
    incident_id: str | None
    acknowledged_at: datetime | None
    acknowledged_by: str | None
    escalated_by: str | None
    escalated_from: str | None
    facts: dict[str, Any]


class AlertPage(BaseModel):
    """A page of alerts, newest first; pass ``next`` as ``after`` for the next page."""

    items: list[AlertOut]
    next: str | None


class AlertDetail(AlertOut):
    """An alert with its evidence events from the audit log, in seq order."""

    evidence_events: list[dict[str, Any]]


def alert_out(stored: StoredAlert) -> AlertOut:
    """The API form of a stored alert."""
    a = stored.alert
    return AlertOut(
        id=stored.id, key=a.key, rule_id=a.rule_id, title=a.title, severity=a.severity.value, state=stored.state,
        subject=a.subject, subject_fields=a.subject_fields, kind=a.kind, response=a.response.value,
        actions=list(a.actions), channels=list(a.channels), owner=a.owner, evidence=list(a.evidence),
        first_seq=a.evidence[0], trigger_seq=a.trigger_seq, first_event_at=a.first_event_at,
        triggered_at=a.triggered_at, time_to_alert_s=a.time_to_alert.total_seconds(), stored_at=stored.stored_at,
        incident_id=stored.incident_id, acknowledged_at=stored.acknowledged_at,
        acknowledged_by=stored.acknowledged_by, escalated_by=a.escalated_by, escalated_from=a.escalated_from,
        facts=dict(a.facts),
    )  # fmt: skip


def alerts_router(gateway: Gateway, desk: Desk) -> APIRouter:
    """``GET /alerts``, ``GET /alerts/{id}``, ``POST /alerts/{id}/acknowledge``."""
    router = APIRouter(tags=["alerts"])
    as_officer = officer(gateway)

    @router.get("/alerts", summary="Stored alerts, newest first, filtered and paged")
    async def list_alerts(
        caller: Caller = Depends(as_officer),  # noqa: B008
        state: Annotated[str | None, Query(description="open, acknowledged or historical")] = None,
        severity: Severity | None = None,
        rule: Annotated[str | None, Query(description="a rule id")] = None,
        subject: Annotated[str | None, Query(description="a whole subject (field=value,...) or one value")] = None,
        since: Annotated[datetime | None, Query(description="triggered at or after (ISO 8601)")] = None,
        until: Annotated[datetime | None, Query(description="triggered before (ISO 8601)")] = None,
        after: Annotated[str | None, Query(description="the 'next' cursor of the previous page")] = None,
        limit: Annotated[int, Query(ge=1, le=500)] = 50,
    ) -> AlertPage:
        where = AlertFilter(state, severity, rule, subject, since, until)
        where.conditions()  # a bad state is refused before anything is recorded
        await read_recorded(gateway, caller, "alerts", {**where.describe(), "after": after, "limit": limit})
        found = await in_thread(lambda: desk.store.search_alerts(where, after=after, limit=limit))
        last = found[-1] if len(found) == limit else None
        return AlertPage(
            items=[alert_out(s) for s in found],
            next=encode_cursor(last.alert.trigger_seq, last.alert.key) if last else None,
        )

    @router.get("/alerts/{alert_id}", summary="One alert with its evidence events")
    async def get_alert(alert_id: str, caller: Caller = Depends(as_officer)) -> AlertDetail:  # noqa: B008
        await read_recorded(gateway, caller, "alerts", {"id": alert_id})
        stored = await in_thread(_found, desk, alert_id)
        events = await in_thread(_evidence, desk, stored.alert.evidence[:MAX_EVIDENCE])
        return AlertDetail(**alert_out(stored).model_dump(), evidence_events=events)

    @router.post("/alerts/{alert_id}/acknowledge", summary="Acknowledge an alert (the first acknowledgement stands)")
    async def acknowledge(alert_id: str, caller: Caller = Depends(as_officer)) -> AlertOut:  # noqa: B008
        stored = await in_thread(_found, desk, alert_id)
        if stored.acknowledged_at is None:
            await update_recorded(gateway, caller, {"alert": alert_id, "change": "alert.acknowledged",
                                                    "incident": stored.incident_id})  # fmt: skip
            by = caller.subject.principal_id
            await in_thread(lambda: desk.store.acknowledge(alert_id, by=by, at=gateway.clock.now()))
            stored = await in_thread(_found, desk, alert_id)
        return alert_out(stored)

    return router


def _found(desk: Desk, alert_id: str) -> StoredAlert:
    stored = desk.store.alert_by_id(alert_id)
    if stored is None:
        raise NotFound(f"no alert {alert_id!r}")
    return stored


def _evidence(desk: Desk, seqs: tuple[int, ...]) -> list[dict[str, Any]]:
    out = []
    for seq in seqs:
        events = desk.reader.events_after(seq - 1, 1)
        if events and events[0].seq == seq:
            out.append(event_to_json(events[0]))
    return out
