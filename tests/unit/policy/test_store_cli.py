"""The policy store swaps atomically and keeps the old set on a bad file; the CLI checks,
tests, explains and diffs a scaffolded site."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard.app import load_site_policy
from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.policy import PolicyStore
from tests.unit.policy.helpers import request


def test_template_site_policy_checks_and_its_tests_pass(
    make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site()
    assert main(["policy", "check", "--site", str(site)]) == 0
    assert main(["policy", "test", "--site", str(site)]) == 0
    assert "0 failed" in capsys.readouterr().out


def test_store_reload_swaps_and_keeps_old_on_bad_file(make_site: Callable[..., Path], clock: FakeClock) -> None:
    site = make_site()
    store = PolicyStore(lambda: load_site_policy(site), clock)
    before = store.point
    assert before.decide(request("north/radiologist")).permitted
    (site / "policies" / "north.yaml").write_text("zone: north\nrules:\n  - id: x\n    effect: maybe\n")
    result = store.reload()
    assert not result.ok
    assert result.problems[0].key == "rules[0].effect"
    assert store.point is before
    (site / "policies" / "north.yaml").unlink()
    assert store.reload().ok
    assert store.point is not before
    assert not store.point.decide(request("north/radiologist")).permitted


def test_failing_case_is_reported_with_explanation(
    make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    case = (
        "cases:\n  - name: wrong expectation\n"
        "    request: {roles: [north/referrer], zone: north, study_zone: north, at: 2026-03-02T09:00:00Z}\n"
        "    expect: {effect: permit}\n"
    )
    site = make_site(policies__tests__wrong_yaml=case)
    (site / "policies" / "tests" / "wrong_yaml").rename(site / "policies" / "tests" / "wrong.yaml")
    assert main(["policy", "test", "--site", str(site)]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out
    assert "wrong.yaml:2: wrong expectation" in out
    assert "expected permit, got deny" in out
    assert "closest permit: north-referrers-treatment" in out


def test_bad_case_file_is_bad_input(make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site()
    (site / "policies" / "tests" / "bad.yaml").write_text("cases:\n  - name: x\n    request: {zone: north}\n")
    assert main(["policy", "test", "--site", str(site)]) == 2
    err = capsys.readouterr().err
    assert "bad.yaml:3" in err
    assert "study_zone" in err


def test_check_reports_unknown_role(make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site()
    text = (site / "policies" / "south.yaml").read_text().replace("roles: [radiologist]", "roles: [surgeon]")
    (site / "policies" / "south.yaml").write_text(text)
    assert main(["policy", "check", "--site", str(site)]) == 2
    err = "".join(capsys.readouterr().err.split())
    assert "south.yaml:6[rules[0].roles[0]]:rule'south-radiologists-read':unknownrole'south/surgeon'" in err


def test_explain_prints_agreement_and_reasons(
    make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site()
    args = ["policy", "explain", "--site", str(site), "--roles", "south/radiologist", "--zone", "south"]
    assert main([*args, "--study-zone", "north", "--action", "read"]) == 0
    out = capsys.readouterr().out
    assert "effect: permit" in out
    assert "agreement: north-south-imaging" in out
    assert main([*args, "--study-zone", "north", "--sensitivity", "4"]) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert "effect: deny" in out
    assert "exceeds the agreement's maximum 2" in out
    assert main([*args, "--study-zone", "nowhere"]) == 2
    assert main([*args, "--study-zone", "north", "--purpose", "fun"]) == 2


def test_diff_lists_changed_decisions(
    make_site: Callable[..., Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site()
    new = tmp_path / "new-policies"
    shutil.copytree(site / "policies", new)
    (new / "south.yaml").unlink()
    requests = tmp_path / "requests.jsonl"
    lines = [
        {"roles": ["south/radiologist"], "zone": "south", "study_zone": "south", "at": "2026-03-02T09:00:00Z"},
        {"roles": ["north/radiologist"], "zone": "north", "study_zone": "north", "at": "2026-03-02T09:00:00Z"},
    ]
    requests.write_text("\n".join(json.dumps(line) for line in lines) + "\n")
    argv = ["policy", "diff", "--site", str(site), str(site / "policies"), str(new), "--requests", str(requests)]
    assert main(argv) == 1
    out = capsys.readouterr().out
    assert "requests.jsonl:1: someone read south: permit -> deny (rules south-radiologists-read -> -)" in " ".join(
        out.split()
    )
    assert "2 requests replayed, 1 decisions change" in out
    assert main([*argv[:4], str(site / "policies"), str(site / "policies"), "--requests", str(requests)]) == 0
    requests.write_text("{not json\n")
    assert main(argv) == 2
