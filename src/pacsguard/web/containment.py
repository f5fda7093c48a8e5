"""``/containment``: an officer orders a playbook (lock account, revoke sessions and
tokens, expire shares, block IP, MFA re-enrolment, suspend device), lists what is in
force, and undoes it. The playbooks record ``containment.<action>`` and
``containment.undone`` themselves, naming the officer's principal id as who ordered it."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from pacsguard.errors import NotFound
from pacsguard.gateway import Gateway
from pacsguard.gateway.auth import Caller
from pacsguard.monitor.containment import PLAYBOOKS, ActiveContainment, containment_id
from pacsguard.monitor.incidents import mark
from pacsguard.web._officer import Desk, in_thread, officer, read_recorded, update_recorded

__all__ = ["ContainmentOrder", "ContainmentOut", "OrderResult", "PlaybookOut", "containment_router"]


class ContainmentOrder(BaseModel):
    """Run ``action`` (a playbook name) on ``target`` (a principal id, or an IP address for
    ``block_ip``). ``until`` ends a lock, suspension or block at that time; ``incident``
    ticks that incident's contain step."""

    action: str = Field(description=", ".join(PLAYBOOKS))
    target: str = Field(min_length=1, max_length=256)
    reason: str = Field(min_length=3, max_length=500)
    until: datetime | None = None
    incident: str | None = None


class ContainmentOut(BaseModel):
    """A containment in force."""

    id: str
    action: str
    target: str
    ordered_by: str
    reason: str
    since: datetime


class OrderResult(BaseModel):
    """Whether the order changed anything (a repeat does not) and what is in force now."""

    changed: bool
    containment: ContainmentOut | None


class UndoResult(BaseModel):
    """Whether the undo changed anything."""

    changed: bool
    action: str
    target: str


class PlaybookOut(BaseModel):
    """One containment action the API accepts."""

    name: str
    summary: str
    target: str
    timed: bool


def _out(active: ActiveContainment) -> ContainmentOut:
    return ContainmentOut(id=active.id, action=active.action, target=active.target, ordered_by=active.ordered_by,
                          reason=active.reason, since=active.since)  # fmt: skip


def containment_router(gateway: Gateway, desk: Desk) -> APIRouter:
    """``POST /containment``, ``GET /containment``, ``GET /containment/playbooks``,
    ``POST /containment/{id}/undo``."""
    router = APIRouter(tags=["containment"])
    as_officer = officer(gateway)

    @router.get("/containment/playbooks", summary="The containment actions")
    async def playbooks(caller: Caller = Depends(as_officer)) -> list[PlaybookOut]:  # noqa: B008
        return [PlaybookOut(name=p.name, summary=p.summary, target=p.target, timed=p.timed) for p in PLAYBOOKS.values()]

    @router.get("/containment", summary="Containments in force")
    async def active(caller: Caller = Depends(as_officer)) -> list[ContainmentOut]:  # noqa: B008
        await read_recorded(gateway, caller, "containment", {})
        return [_out(c) for c in await in_thread(desk.containment.active)]

    @router.post("/containment", summary="Run a containment playbook")
    async def order(order: ContainmentOrder, caller: Caller = Depends(as_officer)) -> OrderResult:  # noqa: B008
        by = caller.subject.principal_id
        incident = await in_thread(desk.store.incident, order.incident) if order.incident else None
        if order.incident and incident is None:
            raise NotFound(f"no incident {order.incident!r}")
        changed = await in_thread(_apply, desk, order, by)
        if incident is not None and incident.step("contain").done_at is None:
            note = f"{order.action} {order.target}"
            await update_recorded(gateway, caller, {"incident": incident.id, "change": "checklist", "step": "contain",
                                                    "note": note})  # fmt: skip
            await in_thread(desk.store.save_incident, mark(incident, "contain", gateway.clock.now(), by, note))
        wanted = containment_id(order.action, order.target)
        now = next((c for c in await in_thread(desk.containment.active) if c.id == wanted), None)
        return OrderResult(changed=changed, containment=_out(now) if now else None)

    @router.post("/containment/{containment_id}/undo", summary="Undo a containment")
    async def undo(containment_id: str, caller: Caller = Depends(as_officer)) -> UndoResult:  # noqa: B008
        found = next((c for c in await in_thread(desk.containment.active) if c.id == containment_id), None)
        if found is None:
            raise NotFound(f"no containment {containment_id!r} in force")
        by = caller.subject.principal_id
        changed = await in_thread(lambda: desk.containment.undo(found.action, found.target, officer=by))
        return UndoResult(changed=changed, action=found.action, target=found.target)

    return router


def _apply(desk: Desk, order: ContainmentOrder, by: str) -> bool:
    return desk.containment.apply(order.action, order.target, ordered_by=by, reason=order.reason, until=order.until)
