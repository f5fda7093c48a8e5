"""Incidents as pure values: grouping by subject, the checklist, the state machine."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from pacsguard.monitor import Alert, Severity
from pacsguard.monitor.incidents import IncidentState, acknowledge, group, mark, resolve

T0 = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)


def alert(rule: str, subject: str, seqs: tuple[int, ...], severity: Severity = Severity.MEDIUM) -> Alert:
    return Alert(rule, rule, severity, subject, seqs, T0 + timedelta(seconds=seqs[0]), T0 + timedelta(seconds=seqs[-1]))


def test_alerts_about_one_subject_share_an_incident_and_others_get_their_own() -> None:
    alerts = [
        alert("a", "actor.principal_id=alice", (1, 4)),
        alert("b", "actor.ip=10.0.0.1", (2,)),
        alert("c", "actor.principal_id=alice", (7, 9), Severity.CRITICAL),
    ]
    changed, joined = group(((a, T0 + timedelta(seconds=10)) for a in alerts), {})
    assert len(changed) == 2
    assert joined[alerts[0].key] == joined[alerts[2].key] != joined[alerts[1].key]
    alice = changed[joined[alerts[0].key]]
    assert (alice.evidence_from, alice.evidence_to, alice.severity) == (1, 9, Severity.CRITICAL)
    assert alice.time_to_alert == timedelta(seconds=9)
    later, again = group(
        [(alert("d", "actor.principal_id=alice", (12,)), T0 + timedelta(minutes=1))], {alice.subject: alice}
    )
    assert list(later) == [alice.id]
    assert later[alice.id].evidence_to == 12
    assert again == {alerts[0].key.replace("a/", "d/").replace("/4", "/12"): alice.id}


def test_the_incident_id_is_stable_for_the_same_first_alert() -> None:
    first = alert("a", "s=1", (3,))
    one, _ = group([(first, T0)], {})
    two, _ = group([(first, T0 + timedelta(hours=1))], {})
    assert list(one) == list(two)


def test_containment_acknowledgement_and_resolution() -> None:
    [incident] = group([(alert("a", "s=1", (1,)), T0)], {})[0].values()
    assert incident.state is IncidentState.OPEN
    with pytest.raises(ValueError, match="still open"):
        resolve(incident, "olga", T0)
    contained = mark(incident, "contain", T0 + timedelta(seconds=30), "rule:a", "lock_account")
    assert contained.state is IncidentState.CONTAINED
    assert contained.time_to_contain == timedelta(seconds=30)
    again = mark(contained, "contain", T0 + timedelta(hours=1), "olga")
    assert again.step("contain").by == "rule:a"  # the first tick stands
    taken = acknowledge(contained, "olga", T0 + timedelta(minutes=2))
    assert taken.owner == "olga"
    assert taken.state is IncidentState.CONTAINED
    done = resolve(taken, "olga", T0 + timedelta(hours=2), "password reset, roles reviewed")
    assert done.state is IncidentState.RESOLVED
    assert done.step("reset").note == "password reset, roles reviewed"
    with pytest.raises(ValueError, match="resolved already"):
        acknowledge(done, "sam", T0)
    with pytest.raises(KeyError):
        mark(incident, "celebrate", T0, "olga")
