"""Requests described by plain fields, for ``policy explain``, policy test cases and recorded
requests (JSONL). ``RequestSpec`` is the one shape all three use."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictStr

from pacsguard.domain import (
    AccessRequest,
    Action,
    AuthStrength,
    HeldRole,
    Purpose,
    RequestContext,
    Resource,
    RoleRef,
    Sensitivity,
    Subject,
    ZoneTree,
)
from pacsguard.domain.access import RoleSource
from pacsguard.domain.decision import ConsentState
from pacsguard.errors import Problem

__all__ = ["RequestSpec", "build_request"]


def _enum_name(enum: Any) -> Any:
    def convert(value: Any) -> Any:
        if isinstance(value, str) and value.upper().replace("-", "_") in enum.__members__:
            return enum[value.upper().replace("-", "_")]
        return value

    return convert


def _split(value: Any) -> Any:
    return [v.strip() for v in value.split(",") if v.strip()] if isinstance(value, str) else value


class RequestSpec(BaseModel):
    """A request in plain fields: the subject's roles (``zone/role``) and home zone, the study's
    zone and attributes, the action and the context. ``at`` fixes the time of the decision."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    principal: StrictStr = "someone"
    roles: Annotated[list[StrictStr], BeforeValidator(_split)] = Field(default_factory=list)
    zone: StrictStr
    study_zone: StrictStr
    action: Action = Action.READ
    sensitivity: Annotated[Sensitivity, BeforeValidator(_enum_name(Sensitivity))] = Sensitivity.INTERNAL
    modality: StrictStr | None = None
    consent: ConsentState = ConsentState.UNKNOWN
    purpose: Purpose = Purpose.TREATMENT
    auth_strength: Annotated[AuthStrength, BeforeValidator(_enum_name(AuthStrength))] = AuthStrength.PASSWORD
    ip: StrictStr | None = None
    study: StrictStr | None = None
    patient: StrictStr | None = None
    at: datetime | None = None


def build_request(spec: RequestSpec, zones: ZoneTree, where: str = "request") -> tuple[AccessRequest, list[Problem]]:
    """Turn ``spec`` into an ``AccessRequest``; unknown zones or roles come back as problems."""
    problems: list[Problem] = []
    for key in ("zone", "study_zone"):
        if getattr(spec, key) not in zones:
            problems.append(
                Problem(where, f"unknown zone {getattr(spec, key)!r}", key=key, expected="a zone of zones.yaml")
            )
    held = []
    for text in spec.roles:
        try:
            ref = RoleRef.parse(text, spec.zone)
        except ValueError as exc:
            problems.append(Problem(where, str(exc), key="roles", expected="zone/role"))
            continue
        if ref not in zones.roles:
            problems.append(Problem(where, f"unknown role {str(ref)!r}", key="roles", expected="a role of zones.yaml"))
            continue
        held.append(HeldRole(ref, RoleSource.ASSIGNMENT, f"{where}:{ref}"))
    subject = Subject(spec.principal, spec.zone, tuple(held), spec.auth_strength)
    resource = Resource(spec.study_zone, spec.study, spec.patient, spec.sensitivity, spec.modality, spec.consent)
    return AccessRequest(subject, spec.action, resource, RequestContext(spec.purpose, spec.ip)), problems
