"""``pacsguard policy check | test | explain | diff``: validate, regression-test, explain and
compare the site's access policy."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path

import click
from pydantic import ValidationError

from pacsguard.agreements import load_agreements
from pacsguard.cli._common import console, load_settings, site_option
from pacsguard.clock import SystemClock
from pacsguard.domain import AccessRequest, Decision
from pacsguard.errors import ConfigError, PacsguardError, PolicyFinding, Problem
from pacsguard.policy import (
    CompiledPolicy,
    DecisionPoint,
    RequestSpec,
    build_request,
    compile_policy,
    diff_decisions,
    load_policies,
    render,
    run_case_files,
)
from pacsguard.site import load_zones

__all__ = ["explain_request", "load_site_policy", "policy"]


def load_site_policy(site: Path, policies: Path | None = None) -> CompiledPolicy:
    """Load ``zones.yaml``, ``policies/`` (or ``policies``) and ``agreements/`` of a site and
    compile them; raises ``ConfigError`` listing every problem of every file."""
    zones = load_zones(site / "zones.yaml")
    problems: list[Problem] = []
    policy = agreements = None
    try:
        policy = load_policies(policies if policies is not None else site / "policies", zones)
    except ConfigError as exc:
        problems.extend(exc.problems)
    try:
        agreements = load_agreements(site / "agreements", zones)
    except ConfigError as exc:
        problems.extend(exc.problems)
    if problems or policy is None or agreements is None:
        raise ConfigError(problems)
    return compile_policy(zones, policy, agreements)


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
@click.option("--roles", required=True, help="The subject's roles, comma separated: zone/role,...")
@click.option("--zone", required=True, help="The subject's home zone.")
@click.option("--study-zone", required=True, help="The zone that owns the study.")
@click.option("--action", default="read", show_default=True)
@click.option("--sensitivity", default="internal", show_default=True, help="0..5 or a name.")
@click.option("--modality", default=None)
@click.option("--purpose", default="treatment", show_default=True)
@click.option("--auth-strength", default="password", show_default=True)
@click.option("--ip", default=None, help="The client's IP address.")
def explain(site: Path | None, **fields: str | None) -> None:
    """Print the decision for one request, with its rules, agreement and reasons."""
    _, point = _point(site)
    values = {k: v for k, v in fields.items() if v is not None}
    if "sensitivity" in values and str(values["sensitivity"]).isdigit():
        values["sensitivity"] = int(str(values["sensitivity"]))  # type: ignore[assignment]
    try:
        spec = RequestSpec.model_validate(values)
    except ValidationError as exc:
        raise ConfigError([Problem("command line", e["msg"], key=str(e["loc"][0])) for e in exc.errors()]) from exc
    for line in render(explain_request(point, spec)):
        console.print(line, markup=False)


@policy.command()
@site_option
@click.argument("old", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.argument("new", type=click.Path(file_okay=False, exists=True, path_type=Path))
@click.option(
    "--requests",
    "requests_file",
    required=True,
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    help="Recorded requests, one JSON object per line (the fields of a policy test request).",
)
def diff(site: Path | None, old: Path, new: Path, requests_file: Path) -> None:
    """Replay recorded requests against the policy directories OLD and NEW and list the
    decisions that would change; exit 1 when any does. Requests come from a JSONL file for
    now; replaying the audit log's last N days will come with the audit log."""
    root, before = _point(site, old)
    after = DecisionPoint(load_site_policy(root, new), SystemClock())
    items = _read_requests(requests_file, before)
    changes = diff_decisions(before, after, items)
    for change in changes:
        console.print(
            f"{requests_file}:{change.index + 1}: {change.old.effect.value} -> {change.new.effect.value} "
            f"(rules {', '.join(change.old.rule_ids) or '-'} -> {', '.join(change.new.rule_ids) or '-'})",
            markup=False,
        )
    console.print(f"{len(items)} requests replayed, {len(changes)} decisions change")
    if changes:
        raise PolicyFinding(f"{len(changes)} decision(s) would change")


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
