"""``policy diff`` replays the audit log's data requests against two policy sets."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.cli import main
from pacsguard.domain import Actor, AuditEvent, ObjectRef, Outcome, Sensitivity

STUDY = "1.2.826.0.1.3680043.8.498.77"


@pytest.fixture
def site(make_site: Callable[..., Path], add_person: Callable[..., None]) -> Path:
    """alice (north radiologist, from outside the hospital LAN) read a north CT three times
    and was refused an export, per the log; a principal since removed read it once."""
    site = make_site()
    add_person(site, "alice", "north", "radiologist")
    with open_site(config.load(site)) as opened:
        opened.catalogue.record(STUDY, zone="north", archive="north-pacs", patient_id="P9", modality="CT")
        opened.catalogue.set_sensitivity(STUDY, Sensitivity.INTERNAL, by="root")
        now = opened.clock.now()
        actor = Actor(principal_id="alice", zone="north", ip="192.0.2.5", auth_strength=1)
        for type_, outcome, detail in (
            ("study.read", Outcome.SUCCESS, {"purpose": "treatment"}),
            ("study.read", Outcome.SUCCESS, {}),
            ("access.denied", Outcome.DENIED, {"action": "export"}),
            ("study.read", Outcome.SUCCESS, {}),
        ):
            opened.audit.emit(AuditEvent(type_, now, outcome, actor, ObjectRef(study_uid=STUDY), detail=detail))
        ghost = Actor(principal_id="ghost", zone="north")
        opened.audit.emit(AuditEvent("study.read", now, actor=ghost, objects=ObjectRef(study_uid=STUDY)))
    return site


def test_unchanged_policy_changes_nothing(site: Path, capsys: pytest.CaptureFixture[str]) -> None:
    policies = str(site / "policies")
    assert main(["policy", "diff", "--site", str(site), policies, policies]) == 0
    out = capsys.readouterr().out
    assert "4 requests replayed, 0 decisions change" in out
    # the ghost's read, and the classification made by the operator "root" (no principal)
    assert "2 audited requests skipped" in out


def test_removing_the_read_rule_shows_each_audited_read_that_would_be_denied(
    site: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    new = tmp_path / "new-policies"
    shutil.copytree(site / "policies", new)
    text = (new / "north.yaml").read_text()
    (new / "north.yaml").write_text(
        text.replace(
            "actions: [query, read]\n    when:\n      max_sensitivity: confidential",
            "actions: [query]\n    when:\n      max_sensitivity: confidential",
            1,
        )
    )
    capsys.readouterr()
    assert main(["policy", "diff", "--site", str(site), str(site / "policies"), str(new)]) == 1
    out = capsys.readouterr().out
    assert out.count("alice read " + STUDY + ": permit -> deny") == 3
    assert "4 requests replayed, 3 decisions change" in out
