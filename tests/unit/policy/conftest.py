"""Fixtures for the decision point: the template's zone tree, and a factory that compiles
policy and agreement YAML texts into a ``DecisionPoint``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard.agreements import load_agreements
from pacsguard.clock import FakeClock
from pacsguard.domain import ZoneTree
from pacsguard.policy import DecisionPoint, compile_policy, load_policies
from tests.unit.policy.helpers import build_zones

MakePoint = Callable[..., DecisionPoint]


@pytest.fixture
def zones() -> ZoneTree:
    return build_zones()


@pytest.fixture
def make_point(tmp_path: Path, zones: ZoneTree, clock: FakeClock) -> MakePoint:
    """Write ``policies`` (name -> YAML) and ``agreements`` into a fresh directory, compile them."""
    counter = iter(range(1000))

    def make(policies: dict[str, str] | None = None, agreements: dict[str, str] | None = None) -> DecisionPoint:
        base = tmp_path / f"p{next(counter)}"
        (base / "policies").mkdir(parents=True)
        (base / "agreements").mkdir()
        for name, text in (policies or {}).items():
            (base / "policies" / f"{name}.yaml").write_text(text)
        for name, text in (agreements or {}).items():
            (base / "agreements" / f"{name}.yaml").write_text(text)
        policy = load_policies(base / "policies", zones)
        return DecisionPoint(compile_policy(zones, policy, load_agreements(base / "agreements", zones)), clock)

    return make
