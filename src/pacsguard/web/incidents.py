"""``/incidents``: incidents with their alerts, scope, checklist and response times; an
officer moves their state, takes or gives ownership, and ticks checklist steps. Every
read is recorded first, every change before it is made (``incident.updated``)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query
from pydantic import BaseModel, Field

from pacsguard.domain.events import JsonValue
from pacsguard.errors import IncidentError, NotFound
from pacsguard.gateway import Gateway
from pacsguard.gateway.auth import Caller
from pacsguard.monitor.alert_search import AlertFilter
from pacsguard.monitor.containment import is_active_officer
from pacsguard.monitor.incidents import Incident, IncidentState, assign, tick, transition
from pacsguard.web._officer import Desk, in_thread, officer, read_recorded, update_recorded
from pacsguard.web.alerts import AlertOut, alert_out

__all__ = ["IncidentDetail", "IncidentOut", "incidents_router"]


class StepOut(BaseModel):
    """One step of the response routine: done when ``done_at`` is set."""

    name: str
    title: str
    done_at: datetime | None
    by: str | None
    note: str


class IncidentOut(BaseModel):
    """An incident: the subject's alerts grouped, with the response times."""

    id: str
    subject: str
    state: IncidentState
    severity: str
    owner: str
    opened_at: datetime
    first_event_at: datetime
    first_alert_at: datetime
    acknowledged_at: datetime | None
    contained_at: datetime | None
    resolved_at: datetime | None
    time_to_alert_s: float = Field(description="from the first evidence event to the first alert stored")
    time_to_contain_s: float | None = Field(description="from the first alert to containment")
    evidence_from: int
    evidence_to: int
    checklist: list[StepOut]


class IncidentDetail(IncidentOut):
    """An incident with its alerts, its scope and the signed head pinning its evidence."""

    alerts: list[AlertOut]
    scope: dict[str, Any] | None
    head: dict[str, Any] | None


class StateChange(BaseModel):
    """Move the incident to ``state`` (forward only), with an optional note."""

    state: IncidentState
    note: str = Field("", max_length=2000)


class OwnerChange(BaseModel):
    """Give the incident to ``owner``, an active security officer's principal id."""

    owner: str = Field(min_length=1, max_length=128)


class StepDone(BaseModel):
    """What was done for the step."""

    note: str = Field("", max_length=2000)


def incident_out(incident: Incident) -> IncidentOut:
    """The API form of an incident (without alerts, scope and head)."""
    contain = incident.time_to_contain
    return IncidentOut(
        id=incident.id, subject=incident.subject, state=incident.state, severity=incident.severity.value,
        owner=incident.owner, opened_at=incident.opened_at, first_event_at=incident.first_event_at,
        first_alert_at=incident.first_alert_at, acknowledged_at=incident.acknowledged_at,
        contained_at=incident.contained_at, resolved_at=incident.resolved_at,
        time_to_alert_s=incident.time_to_alert.total_seconds(),
        time_to_contain_s=None if contain is None else contain.total_seconds(),
        evidence_from=incident.evidence_from, evidence_to=incident.evidence_to,
        checklist=[StepOut(**s.to_json()) for s in incident.checklist],
    )  # fmt: skip


def incidents_router(gateway: Gateway, desk: Desk) -> APIRouter:
    """``GET /incidents``, ``GET /incidents/{id}``, ``POST /incidents/{id}/state``,
    ``/owner`` and ``/checklist/{step}``."""
    router = APIRouter(tags=["incidents"])
    as_officer = officer(gateway)

    async def save(caller: Caller, changed: Incident, change: dict[str, JsonValue]) -> IncidentDetail:
        """Record the officer's change (durably, before it is made), store it, show the result."""
        await update_recorded(gateway, caller, {"incident": changed.id, **change})
        await in_thread(desk.store.save_incident, changed)
        return await in_thread(_detail, desk, changed.id)

    @router.get("/incidents", summary="Incidents, newest first")
    async def list_incidents(
        caller: Caller = Depends(as_officer),  # noqa: B008
        state: IncidentState | None = None,
        limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    ) -> list[IncidentOut]:
        await read_recorded(gateway, caller, "incidents", {"state": state.value if state else None, "limit": limit})
        found = await in_thread(lambda: desk.store.incidents(state=state))
        return [incident_out(i) for i in found[:limit]]

    @router.get("/incidents/{incident_id}", summary="One incident: alerts, scope, checklist, times")
    async def get_incident(incident_id: str, caller: Caller = Depends(as_officer)) -> IncidentDetail:  # noqa: B008
        await read_recorded(gateway, caller, "incidents", {"id": incident_id})
        return await in_thread(_detail, desk, incident_id)

    @router.post("/incidents/{incident_id}/state", summary="Move the incident forward (illegal moves: 409)")
    async def change_state(
        incident_id: str,
        change: StateChange,
        caller: Caller = Depends(as_officer),  # noqa: B008
    ) -> IncidentDetail:
        current = await in_thread(_incident, desk, incident_id)
        by = caller.subject.principal_id
        changed = transition(current, change.state, by, gateway.clock.now(), change.note)
        return await save(caller, changed, {"change": "state", "from": current.state.value,
                                            "to": change.state.value, "note": change.note})  # fmt: skip

    @router.post("/incidents/{incident_id}/owner", summary="Give the incident to a security officer")
    async def change_owner(
        incident_id: str,
        change: OwnerChange,
        caller: Caller = Depends(as_officer),  # noqa: B008
    ) -> IncidentDetail:
        current = await in_thread(_incident, desk, incident_id)
        changed = assign(current, change.owner)
        if not await in_thread(is_active_officer, gateway.directory, change.owner):
            raise IncidentError(f"{change.owner!r} is not an active security officer: only officers own incidents")
        return await save(caller, changed, {"change": "owner", "from": current.owner, "to": change.owner})

    @router.post("/incidents/{incident_id}/checklist/{step}", summary="Mark a response step done, with a note")
    async def step_done(
        incident_id: str,
        step: str,
        done: StepDone = Body(default_factory=StepDone),  # noqa: B008
        caller: Caller = Depends(as_officer),  # noqa: B008
    ) -> IncidentDetail:
        current = await in_thread(_incident, desk, incident_id)
        changed = tick(current, step, gateway.clock.now(), caller.subject.principal_id, done.note)
        return await save(caller, changed, {"change": "checklist", "step": step, "note": done.note})

    return router


def _incident(desk: Desk, incident_id: str) -> Incident:
    incident = desk.store.incident(incident_id)
    if incident is None:
        raise NotFound(f"no incident {incident_id!r}")
    return incident


def _detail(desk: Desk, incident_id: str) -> IncidentDetail:
    incident = _incident(desk, incident_id)
    alerts = desk.store.search_alerts(AlertFilter(incident=incident_id), limit=1000)
    return IncidentDetail(
        **incident_out(incident).model_dump(),
        alerts=[alert_out(a) for a in alerts],
        scope=dict(incident.scope) if incident.scope is not None else None,
        head=dict(incident.head) if incident.head is not None else None,
    )
