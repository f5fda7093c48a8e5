"""Policy test cases: YAML files of requests with the expected effect and reason, so that a
site keeps regression tests for its policy (``pacsguard policy test``).

A case file::

    cases:
      - name: a north radiologist reads a north CT
        request: {roles: [north/radiologist], zone: north, study_zone: north, action: read}
        expect: {effect: permit, rule: north-radiologists-read}
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, StrictStr

from pacsguard import yamlfile
from pacsguard.domain import Decision, Effect
from pacsguard.errors import ConfigError, Problem
from pacsguard.policy.decide import DecisionPoint
from pacsguard.policy.requests import RequestSpec, build_request

__all__ = ["CaseResult", "run_case_files"]


class _Expect(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    effect: Literal["permit", "deny"]
    rule: StrictStr | None = None
    agreement: StrictStr | None = None
    reason: StrictStr | None = None


class _Case(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: StrictStr
    request: RequestSpec
    expect: _Expect


class _CaseFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    cases: list[_Case]


@dataclass(frozen=True)
class CaseResult:
    """The outcome of one case: ``failures`` is empty when it passed."""

    name: str
    file: Path
    line: int | None
    decision: Decision
    failures: tuple[str, ...]

    @property
    def passed(self) -> bool:
        return not self.failures


def run_case_files(point: DecisionPoint, paths: Iterable[Path]) -> list[CaseResult]:
    """Run every case of ``paths``; raises ``ConfigError`` (file, line, key) for a bad case file."""
    results: list[CaseResult] = []
    problems: list[Problem] = []
    for path in paths:
        try:
            data, locator = yamlfile.load(path)
            spec = yamlfile.validate(_CaseFile, data, locator)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        for i, case in enumerate(spec.cases):
            request, bad = build_request(case.request, point.policy.zones, str(path))
            if bad:
                problems.extend(
                    locator.problem(("cases", i, "request", p.key or ""), p.message, p.expected) for p in bad
                )
                continue
            decision = point.decide(request, case.request.at)
            results.append(
                CaseResult(case.name, path, locator.line(("cases", i)), decision, _check(case.expect, decision))
            )
    if problems:
        raise ConfigError(problems)
    return results


def _check(expect: _Expect, decision: Decision) -> tuple[str, ...]:
    failures = []
    wanted = Effect.PERMIT if expect.effect == "permit" else Effect.DENY
    if decision.effect is not wanted:
        failures.append(f"expected {expect.effect}, got {decision.effect.value}")
    if expect.rule is not None and expect.rule not in decision.rule_ids and expect.rule != decision.closest:
        failures.append(f"expected rule {expect.rule}, got {', '.join(decision.rule_ids) or 'none'}")
    if expect.agreement is not None and decision.agreement != expect.agreement:
        failures.append(f"expected agreement {expect.agreement}, got {decision.agreement or 'none'}")
    texts = [*(r.code for r in decision.reasons), *(r.message for r in decision.reasons), *decision.lacking]
    if expect.reason is not None and not any(expect.reason in text for text in texts):
        failures.append(f"expected a reason mentioning {expect.reason!r}")
    return tuple(failures)
