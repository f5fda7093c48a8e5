"""Bad policy files give errors naming file, line, key and rule id, never a traceback."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsguard.domain import ZoneTree
from pacsguard.errors import ConfigError, Problem
from pacsguard.policy import load_policies


def problems_of(tmp_path: Path, zones: ZoneTree, **files: str) -> list[Problem]:
    for name, text in files.items():
        (tmp_path / f"{name}.yaml").write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_policies(tmp_path, zones)
    return caught.value.problems


RULE = """zone: north
rules:
  - id: r1
    effect: permit
    roles: [radiologist]
    actions: [read]
"""


def test_valid_file_loads(tmp_path: Path, zones: ZoneTree) -> None:
    (tmp_path / "north.yaml").write_text(RULE)
    policy = load_policies(tmp_path, zones)
    assert [rule.id for rule in policy.rules] == ["r1"]
    assert policy.rules[0].line == 3


def test_unknown_role(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, north=RULE.replace("[radiologist]", "[radiologist, nurse]"))
    assert problem.message == "rule 'r1': unknown role 'north/nurse'"
    assert (problem.line, problem.key) == (5, "rules[0].roles[1]")
    assert str(problem.file).endswith("north.yaml")


def test_unknown_zone_of_file(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, x=RULE.replace("zone: north", "zone: east"))
    assert problem.message == "unknown zone 'east'"
    assert (problem.line, problem.key) == (1, "zone")


def test_unknown_zone_in_condition(tmp_path: Path, zones: ZoneTree) -> None:
    text = RULE + "    when:\n      subtree: [north, west]\n"
    (problem,) = problems_of(tmp_path, zones, north=text)
    assert problem.message == "rule 'r1': unknown zone 'west'"
    assert (problem.line, problem.key) == (8, "rules[0].when.subtree[1]")


def test_condition_zone_outside_policy_zone(tmp_path: Path, zones: ZoneTree) -> None:
    text = RULE + "    when:\n      zone: south\n"
    (problem,) = problems_of(tmp_path, zones, north=text)
    assert "outside the policy's zone 'north'" in problem.message


def test_unknown_action(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, north=RULE.replace("[read]", "[read, print]"))
    assert problem.message == "rule 'r1': unknown action 'print'"
    assert (problem.line, problem.key) == (6, "rules[0].actions[1]")
    assert problem.expected is not None
    assert "admin.*" in problem.expected


def test_condition_with_wrong_type(tmp_path: Path, zones: ZoneTree) -> None:
    text = RULE + "    when:\n      max_sensitivity: lots\n      hours: 25-26\n"
    problems = problems_of(tmp_path, zones, north=text)
    keys = {p.key: p for p in problems}
    assert keys["rules[0].when.max_sensitivity"].line == 8
    assert keys["rules[0].when.hours"].line == 9


def test_unknown_condition_key(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, north=RULE + "    when:\n      colour: red\n")
    assert (problem.message, problem.line, problem.key) == ("unknown key", 8, "rules[0].when.colour")


def test_unknown_network(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, north=RULE + "    when:\n      network: [lab]\n")
    assert problem.message == "rule 'r1': unknown network 'lab'"
    assert problem.key == "rules[0].when.network[0]"


def test_bad_cidr_and_timezone(tmp_path: Path, zones: ZoneTree) -> None:
    problems = problems_of(tmp_path, zones, site="timezone: Mars/Olympus\nnetworks:\n  lab: [10.0.0.300/8]\n")
    assert {p.key for p in problems} == {"timezone", "networks.lab[0]"}


def test_duplicate_rule_id_across_files(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, a=RULE, b=RULE)
    assert "duplicate rule id" in problem.message
    assert str(problem.file).endswith("b.yaml")


def test_absolute_permit_is_refused(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, north=RULE + "    absolute: true\n")
    assert problem.message == "rule 'r1': only a forbid can be absolute"


def test_subzone_permit_of_parent_forbid_is_a_conflict(tmp_path: Path, zones: ZoneTree) -> None:
    parent = (
        "zone: north\nrules:\n  - id: no-delete\n    effect: forbid\n    roles: [referrer]\n    actions: [delete]\n"
    )
    child = (
        "zone: north-cardiology\nrules:\n  - id: cardio-delete\n    effect: permit\n"
        "    roles: [cardiologist, north/radiologist]\n    actions: [read, delete]\n"
    )
    (problem,) = problems_of(tmp_path, zones, north=parent, cardio=child)
    assert problem.message.startswith("rule 'cardio-delete': conflict: sub-zone 'north-cardiology' permits delete")
    assert "'no-delete' of parent zone 'north'" in problem.message
    assert (problem.line, str(problem.file).endswith("cardio.yaml")) == (3, True)


def test_conditional_parent_forbid_narrower_than_permit_is_no_conflict(tmp_path: Path, zones: ZoneTree) -> None:
    parent = (
        "zone: north\nrules:\n  - id: no-secret\n    effect: forbid\n    roles: [referrer]\n"
        "    actions: [read]\n    when: {min_sensitivity: secret}\n"
    )
    child = "zone: north-cardiology\nrules:\n  - id: c-read\n    effect: permit\n"
    child += "    roles: [north/referrer]\n    actions: [read]\n"
    (tmp_path / "north.yaml").write_text(parent)
    (tmp_path / "cardio.yaml").write_text(child)
    assert len(load_policies(tmp_path, zones).rules) == 2


def test_rules_without_zone(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, north=RULE.replace("zone: north\n", ""))
    assert problem.message == "a file with rules must name its zone"


def test_yaml_syntax_error_has_line(tmp_path: Path, zones: ZoneTree) -> None:
    (problem,) = problems_of(tmp_path, zones, north="zone: north\nrules: [\n")
    assert problem.line is not None
    assert "not valid YAML" in problem.message
