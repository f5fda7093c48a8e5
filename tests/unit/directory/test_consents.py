"""Consent directives in the database, and their effect through the decision point."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.directory import Directory, Operator
from pacsguard.domain import Outcome, Purpose, RecordingSink, Validity
from pacsguard.domain.decision import ConsentKind
from pacsguard.errors import InvalidEntry, NotFound

OPERATOR = Operator("root")


def test_directives_round_trip_and_only_those_in_force_are_handed_out(
    directory: Directory, clock: FakeClock, events: RecordingSink
) -> None:
    consents = directory.consents
    only_north = consents.add("P1", ConsentKind.ONLY_ZONES, zones=["north"], by=OPERATOR, allow_emergency=False)
    no_research = consents.add(
        "P1",
        ConsentKind.DENY_PURPOSES,
        purposes=[Purpose.RESEARCH],
        by=OPERATOR,
        validity=Validity(clock.now() + timedelta(days=1), clock.now() + timedelta(days=30)),
    )
    consents.add("P2", ConsentKind.DENY_ZONES, zones=["south"], by=OPERATOR)
    assert consents.get(only_north.id) == only_north
    assert consents.in_force(["P1", "P3"]) == {"P1": (only_north,)}
    clock.advance(days=2)
    assert set(consents.in_force(["P1", "P2"])["P1"]) == {only_north, no_research}
    assert consents.revoke(only_north.id, by=OPERATOR) is True
    assert consents.revoke(only_north.id, by=OPERATOR) is False
    assert consents.in_force(["P1"]) == {"P1": (no_research,)}
    assert {d.id for d in consents.of_patient("P1", include_revoked=True)} == {only_north.id, no_research.id}
    created = events.of_type("consent.created")
    assert [e.objects.patient_id for e in created] == ["P1", "P1", "P2"]
    (revoked,) = events.of_type("consent.revoked")
    assert revoked.detail["directive"] == only_north.id
    assert revoked.outcome is Outcome.SUCCESS


def test_a_directive_that_restricts_nothing_or_names_an_unknown_zone_is_refused(directory: Directory) -> None:
    with pytest.raises(InvalidEntry, match="needs at least one zone"):
        directory.consents.add("P1", ConsentKind.ONLY_ZONES, by=OPERATOR)
    with pytest.raises(InvalidEntry, match="needs at least one purpose"):
        directory.consents.add("P1", ConsentKind.DENY_PURPOSES, by=OPERATOR)
    with pytest.raises(InvalidEntry, match="unknown zone"):
        directory.consents.add("P1", ConsentKind.DENY_ZONES, zones=["mars"], by=OPERATOR)
    with pytest.raises(InvalidEntry, match="bad patient id"):
        directory.consents.add(" ", ConsentKind.DENY_ZONES, zones=["south"], by=OPERATOR)
    with pytest.raises(NotFound):
        directory.consents.revoke("c-missing", by=OPERATOR)


def test_consent_cli(make_site: Callable[..., Path], capsys: pytest.CaptureFixture[str]) -> None:
    site = make_site()
    assert (
        main(["consent", "add", "--site", str(site), "--patient", "P7", "--kind", "deny_zones", "--zone", "south"]) == 0
    )
    found = re.search(r"c-[0-9a-f]{16}", capsys.readouterr().out)
    assert found is not None
    directive_id = found.group()
    assert main(["consent", "list", "--site", str(site), "--patient", "P7"]) == 0
    assert directive_id in capsys.readouterr().out
    assert main(["consent", "add", "--site", str(site), "--patient", "P7", "--kind", "deny_zones"]) == 2
    assert "needs at least one zone" in capsys.readouterr().err
    assert main(["consent", "revoke", "--site", str(site), directive_id]) == 0
    assert main(["consent", "list", "--site", str(site), "--patient", "P7"]) == 0
    assert "no consent directives" in capsys.readouterr().out
