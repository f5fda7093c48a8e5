"""``pacsguard consent …``: patients' consent directives, enforced by the decision point
as forbids that only break-glass can pass (and only where the directive allows it)."""

from __future__ import annotations

from pathlib import Path

import click

from pacsguard.cli._common import console, site_option
from pacsguard.cli._directory import _by, _open, _period, _table
from pacsguard.domain import Purpose
from pacsguard.domain.decision import ConsentDirective, ConsentKind

__all__ = ["consent"]


@click.group()
def consent() -> None:
    """Record, list and revoke patients' consent directives."""


@consent.command()
@click.option("--patient", "patient_id", required=True, help="The patient id (DICOM PatientID).")
@click.option(
    "--kind",
    type=click.Choice([k.value for k in ConsentKind]),
    required=True,
    help="only_zones: no access outside these zones; deny_zones: not to these zones; "
    "deny_purposes: not for these purposes.",
)
@click.option("--zone", "zones", multiple=True, help="A zone (stands for its sub-tree); repeat for more.")
@click.option("--purpose", "purposes", multiple=True, type=click.Choice([p.value for p in Purpose]), help="Repeatable.")
@click.option("--from", "start", help="Start: ISO date/time, or +7d / +12h (default: now).")
@click.option("--until", "end", help="End: ISO date/time, or +7d / +12h (default: open).")
@click.option("--no-emergency", is_flag=True, help="Break-glass may not pass this directive either.")
@click.option("--description", default="", help="The patient's words, or where the directive is recorded.")
@click.option("--by", help="Record it as this principal (default: the local site operator).")
@site_option
def add(
    patient_id: str,
    kind: str,
    zones: tuple[str, ...],
    purposes: tuple[str, ...],
    start: str | None,
    end: str | None,
    no_emergency: bool,
    description: str,
    by: str | None,
    site: Path | None,
) -> None:
    """Record a consent directive for a patient."""
    directive = _open(site).consents.add(
        patient_id,
        ConsentKind(kind),
        by=_by(by),
        zones=zones,
        purposes=[Purpose(p) for p in purposes],
        validity=_period(start, end),
        allow_emergency=not no_emergency,
        description=description,
    )
    console.print(f"recorded consent directive [bold]{directive.id}[/] for patient {directive.patient_id}")


@consent.command("list")
@click.option("--patient", "patient_id", required=True)
@click.option("--all", "include_revoked", is_flag=True, help="Include revoked directives.")
@site_option
def list_(patient_id: str, include_revoked: bool, site: Path | None) -> None:
    """List a patient's consent directives."""
    directives = _open(site).consents.of_patient(patient_id, include_revoked=include_revoked)
    table = _table(f"consent directives of {patient_id}", "id", "kind", "scope", "emergency", "valid")
    for d in directives:
        table.add_row(d.id, d.kind.value, _scope(d), "allowed" if d.allow_emergency else "no", _valid(d))
    console.print(table if directives else f"no consent directives for {patient_id}")


@consent.command()
@click.argument("directive_id")
@click.option("--by", help="Revoke as this principal (default: the local site operator).")
@site_option
def revoke(directive_id: str, by: str | None, site: Path | None) -> None:
    """Revoke a consent directive (its history is kept)."""
    done = _open(site).consents.revoke(directive_id, by=_by(by))
    console.print(f"revoked {directive_id}" if done else f"{directive_id} was revoked already")


def _scope(d: ConsentDirective) -> str:
    return ", ".join(sorted(d.zones) or sorted(p.value for p in d.purposes))


def _valid(d: ConsentDirective) -> str:
    start = d.validity.not_before.strftime("%Y-%m-%d") if d.validity.not_before else "…"
    end = d.validity.not_after.strftime("%Y-%m-%d") if d.validity.not_after else "…"
    return f"{start} – {end}"
