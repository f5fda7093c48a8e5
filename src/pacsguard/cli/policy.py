"""``pacsguard policy check | test | explain | diff``: validate, regression-test, explain and
compare the site's access policy."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path

import click
from pydantic import ValidationError

from pacsguard.app import Site, load_site_policy
from pacsguard.audit.reader import LogReader
from pacsguard.cli._common import console, load_settings, site_option
from pacsguard.cli._directory import open_site_for_command
from pacsguard.clock import SystemClock
from pacsguard.domain import AccessRequest, Action, AuthStrength, Decision, Purpose
from pacsguard.errors import AccountLocked, ConfigError, NotFound, PacsguardError, PolicyFinding, Problem
from pacsguard.policy import (
    DecisionPoint,
    RequestSpec,
    build_request,
    diff_decisions,
    render,
    run_case_files,
)

__all__ = ["explain_request", "policy"]


def explain_request(point: DecisionPoint, spec: RequestSpec) -> Decision:
    """Decide the request ``spec`` describes; raises ``ConfigError`` naming an unknown zone or role."""
    request, problems = build_request(spec, point.policy.zones, "--roles/--zone")
    if problems:
        raise ConfigError(problems)
    return point.decide(request, spec.at)


def _point(site: Path | None, policies: Path | None = None) -> tuple[Path, DecisionPoint]:
    root = load_settings(site).site
    return root, DecisionPoint(load_site_policy(root, policies), SystemClock())


@click.group()
def policy() -> None:
    """Validate, test, explain and compare the site's access policy."""


@policy.command()
@site_option
def check(site: Path | None) -> None:
    """Validate zones, policies and agreements; every problem names file, line and rule."""
    root, point = _point(site)
    compiled = point.policy
    console.print(
        f"{root}: {len(compiled.policy.rules)} rules in {len({r.zone for r in compiled.policy.rules})} zones, "
        f"{len(compiled.agreements)} agreements are valid (timezone {compiled.policy.timezone})"
    )


@policy.command("test")
@site_option
@click.argument("files", nargs=-1, type=click.Path(dir_okay=False, exists=True, path_type=Path))
def test_cases(site: Path | None, files: tuple[Path, ...]) -> None:
    """Run policy test cases (default: policies/tests/*.yaml); exit 1 when one fails."""
    root, point = _point(site)
    paths = list(files) or sorted((root / "policies" / "tests").glob("*.yaml"))
    if not paths:
        raise ConfigError(Problem(root / "policies" / "tests", "no test case files (*.yaml) found"))
    results = run_case_files(point, paths)
    failed = [r for r in results if not r.passed]
    for result in failed:
        console.print(f"[red]FAIL[/] {result.file}:{result.line}: {result.name}")
        for failure in result.failures:
            console.print(f"    {failure}", markup=False)
        for line in render(result.decision):
            console.print(f"      {line}", markup=False)
    console.print(f"{len(results) - len(failed)} passed, {len(failed)} failed")
    if failed:
        raise PolicyFinding(f"{len(failed)} policy test case(s) failed")


@policy.command()
@site_option
@click.option("--user", help="A principal of the directory: its roles now, delegations included.")
@click.option("--study", help="A study of the catalogue: its zone, patient, sensitivity, modality, consents.")
@click.option("--roles", help="Without --user: the subject's roles, comma separated: zone/role,...")
@click.option("--zone", help="Without --user: the subject's home zone.")
@click.option("--study-zone", help="Without --study: the zone that owns the study.")
@click.option("--action", default="read", show_default=True)
@click.option("--sensitivity", default=None, help="Without --study: 0..5 or a name (default internal).")
@click.option("--modality", default=None)
@click.option("--purpose", default="treatment", show_default=True)
@click.option("--auth-strength", default="password", show_default=True)
@click.option("--ip", default=None, help="The client's IP address.")
def explain(site: Path | None, user: str | None, study: str | None, **fields: str | None) -> None:
    """Print the decision for one request, with its rules, agreement and reasons.

    Name the subject with --user (or --roles and --zone) and the study with --study (or
    --study-zone and its attributes).
    """
    root, point = _point(site)
    values = {k: v for k, v in fields.items() if v is not None}
    if "sensitivity" in values and str(values["sensitivity"]).isdigit():
        values["sensitivity"] = int(str(values["sensitivity"]))  # type: ignore[assignment]
    if user is None and not ("roles" in values and "zone" in values):
        raise click.UsageError("name the subject: --user ID, or --roles and --zone")
    if study is None and "study_zone" not in values:
        raise click.UsageError("name the study: --study UID, or --study-zone")
    values.setdefault("roles", "")
    values.setdefault("zone", "")
    values.setdefault("study_zone", "")
    try:
        spec = RequestSpec.model_validate(values)
    except ValidationError as exc:
        raise ConfigError([Problem("command line", e["msg"], key=str(e["loc"][0])) for e in exc.errors()]) from exc
    if user is None and study is None:
        decision = explain_request(point, spec)
    else:
        decision = point.decide(_resolved_request(root, spec, user, study))
    for line in render(decision):
        console.print(line, markup=False)


def _resolved_request(root: Path, spec: RequestSpec, user: str | None, study: str | None) -> AccessRequest:
    """The request with its subject from the directory and its study from the catalogue."""
    opened = open_site_for_command(load_settings(root))
    if user is not None and study is not None:
        return opened.access_request(
            user, study, spec.action, purpose=spec.purpose, auth_strength=spec.auth_strength, ip=spec.ip
        )
    any_zone = next(iter(opened.directory.zones.zones))
    filled = {key: any_zone for key in ("zone", "study_zone") if not getattr(spec, key)}
    base, problems = build_request(spec.model_copy(update=filled), opened.directory.zones)
    if problems:
        raise ConfigError(problems)
    if user is not None:
        subject = opened.directory.subject(user, auth_strength=spec.auth_strength)
        return AccessRequest(subject, base.action, base.resource, base.context)
    assert study is not None
    resource, consents = opened.study_resource(study)
    return AccessRequest(base.subject, base.action, resource, base.context, consents)


@policy.command()
@site_option
@click.argument("old", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("new", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--requests",
    "requests_file",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Recorded requests, one JSON object per line (the fields of a policy test request).",
)
@click.option(
    "--days",
    type=click.IntRange(1, 3650),
    default=30,
    show_default=True,
    help="Without --requests: replay the audit log's data requests of the last DAYS days.",
)
def diff(site: Path | None, old: Path, new: Path, requests_file: Path | None, days: int) -> None:
    """Replay requests against the policy directories OLD and NEW and list the decisions
    that would change; exit 1 when any does.

    The requests are the audit log's data events of the last --days (reads, stores,
    deletes, exports, shares and denials), each rebuilt with the subject's roles and the
    study's attributes as they are now and decided at the time it happened; or, with
    --requests, a JSONL file of recorded requests.
    """
    root, before = _point(site, old)
    after = DecisionPoint(load_site_policy(root, new), SystemClock())
    if requests_file is not None:
        items, source = _read_requests(requests_file, before), str(requests_file)
    else:
        opened = open_site_for_command(load_settings(root))
        items, skipped = audited_requests(opened, opened.clock.now() - timedelta(days=days))
        source = "audit"
        if skipped:
            console.print(f"{skipped} audited requests skipped: their principal or study is no longer known")
    changes = diff_decisions(before, after, items)
    for change in changes:
        console.print(
            f"{source}:{change.index + 1}: {_who(change.request)} {change.old.effect.value} -> "
            f"{change.new.effect.value} (rules {', '.join(change.old.rule_ids) or '-'} -> "
            f"{', '.join(change.new.rule_ids) or '-'})",
            markup=False,
        )
    console.print(f"{len(items)} requests replayed, {len(changes)} decisions change")
    if changes:
        raise PolicyFinding(f"{len(changes)} decision(s) would change")


# The data events the gateway records, and the action each stands for; ``access.denied``
# names its action in ``detail.action``.
ACTION_OF_EVENT = {
    "study.read": Action.READ,
    "study.store": Action.STORE,
    "study.delete": Action.DELETE,
    "study.export": Action.EXPORT,
    "share.created": Action.SHARE,
    "study.classify": Action.CLASSIFY,
    "access.denied": None,
}


def audited_requests(site: Site, since: datetime) -> tuple[list[tuple[AccessRequest, datetime | None]], int]:
    """The audit log's data requests since ``since`` as access requests at their own
    time, and how many could not be rebuilt (principal or study gone, no action)."""
    items: list[tuple[AccessRequest, datetime | None]] = []
    skipped = 0
    for event in LogReader(site.engine).iter_events(since, None):
        if event.type not in ACTION_OF_EVENT or not event.actor.principal_id or not event.objects.study_uid:
            continue
        action = ACTION_OF_EVENT[event.type] or _action(event.detail.get("action"))
        if action is None:
            skipped += 1
            continue
        try:
            request = site.access_request(
                event.actor.principal_id,
                event.objects.study_uid,
                action,
                purpose=_purpose(event.detail.get("purpose")),
                auth_strength=AuthStrength(event.actor.auth_strength or AuthStrength.PASSWORD),
                ip=event.actor.ip,
            )
        except (NotFound, AccountLocked):
            skipped += 1
            continue
        items.append((request, event.occurred_at))
    return items, skipped


def _action(value: object) -> Action | None:
    try:
        return Action(str(value))
    except ValueError:
        return None


def _purpose(value: object) -> Purpose:
    try:
        return Purpose(str(value))
    except ValueError:
        return Purpose.TREATMENT


def _who(request: AccessRequest) -> str:
    study = request.resource.study_uid or request.resource.zone
    return f"{request.subject.principal_id} {request.action.value} {study}:"


def _read_requests(path: Path, point: DecisionPoint) -> list[tuple[AccessRequest, datetime | None]]:
    items: list[tuple[AccessRequest, datetime | None]] = []
    problems: list[Problem] = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            spec = RequestSpec.model_validate(json.loads(line))
        except (json.JSONDecodeError, ValidationError) as exc:
            problems.append(Problem(path, f"not a recorded request: {exc}".splitlines()[0], number))
            continue
        request, bad = build_request(spec, point.policy.zones, f"{path}:{number}")
        problems.extend(bad)
        items.append((request, spec.at))
    if problems:
        raise ConfigError(problems)
    if not items:
        raise PacsguardError(f"{path}: no requests to replay")
    return items
