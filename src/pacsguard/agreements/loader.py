"""Load ``agreements/*.yaml`` with precise, located errors (file, line, key)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field

from pacsguard import yamlfile
from pacsguard.agreements.model import Agreement, AgreementState
from pacsguard.domain import Action, Purpose, RoleRef, Sensitivity, Validity, ZoneTree
from pacsguard.errors import ConfigError, Problem

__all__ = ["load_agreement", "load_agreements"]


def _sensitivity(value: Any) -> Any:
    if isinstance(value, str) and value.upper() in Sensitivity.__members__:
        return Sensitivity[value.upper()]
    return value


def _moment(value: Any) -> Any:
    if isinstance(value, date) and not isinstance(value, datetime):
        return datetime(value.year, value.month, value.day, tzinfo=UTC)
    return value


Moment = Annotated[datetime, BeforeValidator(_moment)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ValiditySpec(_Strict):
    not_before: Moment | None = None
    not_after: Moment | None = None


class _ScopeSpec(_Strict):
    actions: list[Action] = Field(min_length=1)
    max_sensitivity: Annotated[Sensitivity, BeforeValidator(_sensitivity)] = Sensitivity.INTERNAL
    purposes: list[Purpose] = Field(min_length=1)


class _AgreementSpec(_Strict):
    id: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
    title: str = ""
    parties: list[str] = Field(min_length=2, max_length=2)
    state: AgreementState = AgreementState.DRAFT
    validity: _ValiditySpec = _ValiditySpec()
    scope: _ScopeSpec
    role_mapping: dict[str, list[str]] = Field(default_factory=dict)


def load_agreements(directory: Path, zones: ZoneTree) -> tuple[Agreement, ...]:
    """Load every ``*.yaml`` in ``directory``; raises ``ConfigError`` listing every problem."""
    problems: list[Problem] = []
    out: list[Agreement] = []
    seen: dict[str, Path] = {}
    for path in sorted(directory.glob("*.yaml")) if directory.is_dir() else []:
        try:
            agreement = load_agreement(path, zones)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if agreement.id in seen:
            problems.append(Problem(path, f"duplicate agreement id {agreement.id!r} (also in {seen[agreement.id]})"))
        seen[agreement.id] = path
        out.append(agreement)
    if problems:
        raise ConfigError(problems)
    return tuple(out)


def load_agreement(path: Path, zones: ZoneTree) -> Agreement:
    """Load one agreement file; raises ``ConfigError`` naming file, line and key."""
    data, locator = yamlfile.load(path)
    spec = yamlfile.validate(_AgreementSpec, data, locator)
    problems: list[Problem] = []
    for i, party in enumerate(spec.parties):
        if party not in zones:
            problems.append(locator.problem(("parties", i), f"unknown zone {party!r}", "a zone of zones.yaml"))
    if len(set(spec.parties)) != 2:
        problems.append(locator.problem(("parties",), "an agreement needs two different parties"))
    try:
        validity = Validity(spec.validity.not_before, spec.validity.not_after)
    except ValueError as exc:
        problems.append(locator.problem(("validity",), str(exc)))
        validity = Validity()
    mapping = _mapping(spec, zones, locator, problems) if not problems else {}
    if problems:
        raise ConfigError(problems)
    return Agreement(
        id=spec.id,
        parties=(spec.parties[0], spec.parties[1]),
        state=spec.state,
        validity=validity,
        actions=frozenset(spec.scope.actions),
        max_sensitivity=spec.scope.max_sensitivity,
        purposes=frozenset(spec.scope.purposes),
        role_mapping=mapping,
        title=spec.title,
    )


def _party_of(zone: str, parties: list[str], zones: ZoneTree) -> str | None:
    return next((p for p in parties if zones.is_within(zone, p)), None)


def _mapping(
    spec: _AgreementSpec, zones: ZoneTree, locator: yamlfile.Locator, problems: list[Problem]
) -> dict[RoleRef, tuple[RoleRef, ...]]:
    mapping: dict[RoleRef, tuple[RoleRef, ...]] = {}
    for key, targets in spec.role_mapping.items():
        source = _role(key, zones, locator, ("role_mapping", key), problems)
        if source is None:
            continue
        side = _party_of(source.zone, spec.parties, zones)
        if side is None:
            problems.append(locator.problem(("role_mapping", key), f"role {key!r} belongs to no party"))
            continue
        mapped = []
        for j, target in enumerate(targets):
            ref = _role(target, zones, locator, ("role_mapping", key, j), problems)
            if ref is None:
                continue
            other = _party_of(ref.zone, spec.parties, zones)
            if other is None or other == side:
                problems.append(
                    locator.problem(("role_mapping", key, j), f"{target!r} must be a role of the other party")
                )
                continue
            mapped.append(ref)
        mapping[source] = tuple(mapped)
    return mapping


def _role(
    text: str, zones: ZoneTree, locator: yamlfile.Locator, path: tuple[str | int, ...], problems: list[Problem]
) -> RoleRef | None:
    try:
        ref = RoleRef.parse(text)
    except ValueError as exc:
        problems.append(locator.problem(path, str(exc), "zone/role"))
        return None
    if ref not in zones.roles:
        problems.append(locator.problem(path, f"unknown role {text!r}", "a role declared in zones.yaml"))
        return None
    return ref
