"""Malformed zones.yaml files each give a precise error: file, line, key, expectation."""

from __future__ import annotations

from pathlib import Path

import pytest

from pacsguard.domain.zones import RoleRef
from pacsguard.errors import ConfigError, Problem
from pacsguard.site import load_zones


def problems_of(tmp_path: Path, text: str) -> list[Problem]:
    path = tmp_path / "zones.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as caught:
        load_zones(path)
    return caught.value.problems


def test_template_zones_load(tmp_path: Path) -> None:
    from pacsguard.cli import main

    assert main(["init", str(tmp_path / "s")]) == 0
    tree = load_zones(tmp_path / "s" / "zones.yaml")
    assert tree.ancestors("north-cardiology") == ["north-cardiology", "north"]
    assert tree.expand_role(RoleRef("north-cardiology", "cardiologist")) == {
        RoleRef("north-cardiology", "cardiologist"),
        RoleRef("north", "referrer"),
    }
    assert tree.subtree("north") == ["north", "north-cardiology"]


def test_cycle_in_zone_tree(tmp_path: Path) -> None:
    (problem,) = problems_of(
        tmp_path,
        "zones:\n  - id: a\n    parent: c\n  - id: b\n    parent: a\n  - id: c\n    parent: b\n",
    )
    assert "cycle in the zone tree" in problem.message
    assert problem.line in {3, 5, 7}
    assert problem.key is not None
    assert problem.key.endswith(".parent")


def test_unknown_parent(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "zones:\n  - id: a\n  - id: b\n    parent: nowhere\n")
    assert problem.message == "unknown parent zone 'nowhere'"
    assert (problem.line, problem.key) == (4, "zones[1].parent")
    assert problem.expected == "one of the zone ids"


def test_duplicate_role(tmp_path: Path) -> None:
    (problem,) = problems_of(
        tmp_path,
        "zones:\n  - id: a\n    roles:\n      - name: r\n      - name: r\n",
    )
    assert problem.message == "duplicate role 'r' in zone 'a'"
    assert (problem.line, problem.key) == (5, "zones[0].roles[1].name")


def test_role_including_unknown_role(tmp_path: Path) -> None:
    (problem,) = problems_of(
        tmp_path,
        "zones:\n  - id: a\n    roles:\n      - name: r\n        includes: [ghost]\n",
    )
    assert problem.message == "unknown role 'a/ghost'"
    assert (problem.line, problem.key) == (5, "zones[0].roles[0].includes[0]")


def test_duplicate_yaml_key_is_refused_not_silently_merged(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "zones:\n  - id: a\n    id: b\n")
    assert problem.message == "duplicate key 'id'"
    assert problem.line == 3


def test_unknown_key_and_bad_id_are_both_reported(tmp_path: Path) -> None:
    problems = problems_of(tmp_path, "zones:\n  - id: Bad Zone\n    colour: red\n")
    assert {(p.key, p.line) for p in problems} == {("zones[0].id", 2), ("zones[0].colour", 3)}


def test_yaml_syntax_error_has_line(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "zones:\n  - id: a\n   - id: b\n")
    assert problem.line == 3
    assert "not valid YAML" in problem.message


def test_python_tags_are_not_executed(tmp_path: Path) -> None:
    (problem,) = problems_of(tmp_path, "zones: !!python/object/apply:os.system ['true']\n")
    assert "not valid YAML" in problem.message


def test_role_including_itself_through_junior_roles(tmp_path: Path) -> None:
    problems = problems_of(
        tmp_path,
        "zones:\n  - id: a\n    roles:\n      - name: r\n        includes: [s]\n"
        "      - name: s\n        includes: [r]\n",
    )
    assert {p.message for p in problems} == {"role a/r includes itself", "role a/s includes itself"}
    assert {p.line for p in problems} == {5, 7}
