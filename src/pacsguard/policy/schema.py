"""The policy rule language: the YAML shape of ``policies/*.yaml``, checked by pydantic.

A policy file::

    zone: north                 # the zone whose studies these rules govern (and its sub-zones)
    timezone: Europe/Oslo       # optional, site-wide: time-of-day conditions use it
    networks:                   # optional, site-wide named networks
      north-lan: [10.1.0.0/16]
    rules:
      - id: radiologists-read
        description: Radiologists read the zone's studies during working hours.
        effect: permit          # or forbid
        roles: [radiologist, north-cardiology/cardiologist]
        actions: [query, read]
        when:                   # every condition must hold
          subtree: [north]      # owning zone (or its sub-tree); zone: exact owner
          max_sensitivity: 3    # also min_sensitivity; a number 0..5 or a name
          modality: [CT, MR]
          consent: [given, unknown]
          min_auth_strength: two_factor
          network: [north-lan]
          purpose: [treatment, emergency]
          hours: "07:00-19:00"  # may wrap midnight: "22:00-06:00"
          weekdays: [mon, tue, wed, thu, fri]
        obligations: {audit: detailed, notify: privacy-officer, review: required, max_duration: 1h}
        absolute: false         # forbid only: true means break-glass cannot pass it
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, StrictBool, StrictInt, StrictStr

from pacsguard.domain import AuthStrength, Purpose, Sensitivity
from pacsguard.domain.decision import ConsentState

__all__ = ["ConditionsSpec", "ObligationsSpec", "PolicyFileSpec", "RuleSpec"]

Name = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HOURS = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)-([01]\d|2[0-4]):([0-5]\d)$")
DURATION = re.compile(r"^(\d+)([smhd])$")


def _enum_name(enum: Any) -> Any:
    def convert(value: Any) -> Any:
        if isinstance(value, str) and value.upper() in enum.__members__:
            return enum[value.upper()]
        return value

    return convert


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str | int) and not isinstance(value, bool) else value


SensitivityValue = Annotated[Sensitivity, BeforeValidator(_enum_name(Sensitivity))]
AuthValue = Annotated[AuthStrength, BeforeValidator(_enum_name(AuthStrength))]
Strings = Annotated[list[StrictStr], BeforeValidator(_one_or_many), Field(min_length=1)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ConditionsSpec(_Strict):
    """Every condition of a rule must hold for the rule to apply."""

    zone: Strings | None = None
    subtree: Strings | None = None
    max_sensitivity: SensitivityValue | None = None
    min_sensitivity: SensitivityValue | None = None
    modality: Strings | None = None
    consent: Annotated[list[ConsentState], BeforeValidator(_one_or_many), Field(min_length=1)] | None = None
    min_auth_strength: AuthValue | None = None
    network: Strings | None = None
    purpose: Annotated[list[Purpose], BeforeValidator(_one_or_many), Field(min_length=1)] | None = None
    hours: Annotated[StrictStr, Field(pattern=HOURS.pattern)] | None = None
    weekdays: Annotated[list[Literal[WEEKDAYS]], BeforeValidator(_one_or_many), Field(min_length=1)] | None = (  # type: ignore[valid-type]
        None
    )


class ObligationsSpec(_Strict):
    """What the caller must do when it acts on a decision made by this rule."""

    audit: Literal["basic", "detailed"] | None = None
    notify: StrictStr | None = None
    alert: StrictStr | None = None
    review: Literal["required"] | None = None
    max_duration: Annotated[StrictStr, Field(pattern=DURATION.pattern)] | None = None


class RuleSpec(_Strict):
    """One rule: who (roles) may or may not do what (actions) under which conditions."""

    id: Name
    description: StrictStr = ""
    effect: Literal["permit", "forbid"]
    roles: Strings
    actions: Annotated[list[StrictStr], BeforeValidator(_one_or_many), Field(min_length=1)]
    when: ConditionsSpec = ConditionsSpec()
    obligations: ObligationsSpec = ObligationsSpec()
    absolute: StrictBool = False


class PolicyFileSpec(_Strict):
    """A policy file: rules for one zone, and site-wide settings (timezone, networks)."""

    zone: Name | None = None
    timezone: StrictStr | None = None
    networks: dict[Name, Annotated[list[StrictStr], BeforeValidator(_one_or_many)]] = Field(default_factory=dict)
    rules: list[RuleSpec] = Field(default_factory=list)
    version: StrictInt = 1
