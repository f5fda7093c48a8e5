"""Rule files: the schema, site overrides, and errors naming file, line, rule and field."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from pacsguard.errors import ConfigError
from pacsguard.monitor import KINDS, load_rules, parse_rule_file
from pacsguard.monitor.rules import ThresholdRule, parse_duration

GOOD = """\
rules:
  - id: x.probe
    title: Probing
    kind: threshold
    events: access.denied
    group_by: [actor.principal_id]
    window: 5m
    more_than: 3
"""


def _problems(tmp_path: Path, text: str) -> list[str]:
    path = tmp_path / "rules.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError) as info:
        parse_rule_file(path)
    return [str(p) for p in info.value.problems]


def test_a_good_file_loads(tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(GOOD)
    (rule,) = parse_rule_file(path).rules
    assert isinstance(rule, ThresholdRule)
    assert rule.window == timedelta(minutes=5)
    assert rule.suppress == timedelta(minutes=30)


def test_unknown_kind_names_file_line_rule_and_field(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD.replace("kind: threshold", "kind: thresold"))
    assert problem.startswith(f"{tmp_path / 'rules.yaml'}:4 [rules[0].kind]: rule 'x.probe': unknown kind 'thresold'")
    assert all(kind in problem for kind in KINDS)


def test_negative_window_is_refused(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD.replace("window: 5m", "window: -5m"))
    assert ":7 [rules[0].window]: rule 'x.probe': negative duration '-5m'" in problem


@pytest.mark.parametrize("window", ["5 minutes", "five", "true"])
def test_malformed_window_is_refused(tmp_path: Path, window: str) -> None:
    (problem,) = _problems(tmp_path, GOOD.replace("window: 5m", f"window: {window}"))
    assert "[rules[0].window]" in problem


def test_unknown_event_field_is_refused(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD.replace("actor.principal_id", "actor.principal"))
    assert ":6 [rules[0].group_by[0]]: rule 'x.probe': unknown field 'actor.principal'" in problem
    assert "detail.<key>" in problem


def test_a_field_path_that_is_not_text_is_refused(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD.replace("[actor.principal_id]", "[3]"))
    assert "[rules[0].group_by[0]]" in problem
    assert "a field path is text" in problem


def test_unknown_key_in_a_rule_is_refused(tmp_path: Path) -> None:
    (problem,) = _problems(tmp_path, GOOD + "    colour: red\n")
    assert ":9 [rules[0].colour]: rule 'x.probe': unknown key 'colour'" in problem


def test_unknown_field_in_a_condition_and_unknown_operator(tmp_path: Path) -> None:
    text = GOOD + "    where: {detail.count: {about: 3}, objects.studyuid: x}\n"
    (problem,) = _problems(tmp_path, text)
    assert "[rules[0].where]" in problem
    assert "unknown operator 'about'" in problem or "unknown field 'objects.studyuid'" in problem


def test_containment_needs_actions_and_known_action_names(tmp_path: Path) -> None:
    assert "needs at least one of actions" in _problems(tmp_path, GOOD + "    response: contain\n")[0]
    bad = _problems(tmp_path, GOOD + "    response: contain\n    actions: [nuke_site]\n")
    assert "[rules[0].actions[0]]" in bad[0]


def test_all_problems_are_reported_together(tmp_path: Path) -> None:
    text = GOOD.replace("window: 5m", "window: -1h").replace("kind: threshold", "kind: threshold\n    bogus: 1")
    assert len(_problems(tmp_path, text)) == 2


def test_a_site_overrides_a_threshold_and_disables_a_rule(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text(
        "overrides:\n"
        "  - id: auth.failed-logins-account\n    more_than: 12\n    window: 15m\n"
        "  - id: share.spree\n    enabled: false\n"
    )
    rules = load_rules(tmp_path)
    rule = rules.by_id("auth.failed-logins-account")
    assert isinstance(rule, ThresholdRule)
    assert (rule.more_than, rule.window) == (12, timedelta(minutes=15))
    assert rules.disabled == ("share.spree",)
    assert "share.spree" not in {r.id for r in rules.rules}
    assert rules.origin["auth.failed-logins-account"] == "default + site.yaml"


def test_an_override_error_points_at_the_site_file(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text("overrides:\n  - id: auth.failed-logins-ip\n    window: -10m\n")
    with pytest.raises(ConfigError) as info:
        load_rules(tmp_path)
    (problem,) = info.value.problems
    assert (Path(problem.file).name, problem.line, problem.key) == ("site.yaml", 3, "overrides[0].window")
    assert "auth.failed-logins-ip" in problem.message


def test_override_of_an_unknown_rule_and_duplicate_ids(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text("overrides:\n  - id: no.such-rule\n    more_than: 1\n")
    (tmp_path / "b.yaml").write_text(GOOD.replace("x.probe", "admin.change"))
    with pytest.raises(ConfigError) as info:
        load_rules(tmp_path)
    messages = [p.message for p in info.value.problems]
    assert "no rule 'no.such-rule' to override" in messages
    assert any("'admin.change': duplicate id" in m for m in messages)


def test_escalate_must_name_existing_rules(tmp_path: Path) -> None:
    text = GOOD + (
        "  - id: x.up\n    title: up\n    kind: escalate\n"
        "    rules: [x.probe]\n    after: [x.missing]\n    within: 1h\n"
    )
    (problem,) = _problems(tmp_path, text)
    assert "[rules[1].after[0]]: rule 'x.up': no rule 'x.missing'" in problem


def test_a_disabled_rule_may_still_be_referenced(tmp_path: Path) -> None:
    (tmp_path / "site.yaml").write_text("overrides:\n  - id: auth.new-device\n    enabled: false\n")
    assert "data.export-after-new-device" in {r.id for r in load_rules(tmp_path).rules}


def test_bad_yaml_and_bad_top_level_keys(tmp_path: Path) -> None:
    assert "not valid YAML" in _problems(tmp_path, "rules: [\n")[0]
    assert "[ruels]: unknown key" in _problems(tmp_path, "ruels: []\n")[0]


def test_working_hours_need_a_real_time_zone(tmp_path: Path) -> None:
    text = GOOD + "    hours: 'off'\n    working_hours: {timezone: Mars/Olympus}\n"
    assert "unknown time zone 'Mars/Olympus'" in _problems(tmp_path, text)[0]


def test_site_networks_and_geoip_path(tmp_path: Path) -> None:
    rules_dir = tmp_path / "rules"
    rules_dir.mkdir()
    (rules_dir / "geo.yaml").write_text("geoip: geo/country.mmdb\nnetworks:\n  10.0.0.0/8: hospital LAN\n")
    rules = load_rules(rules_dir)
    assert rules.geoip == tmp_path / "geo" / "country.mmdb"
    assert rules.networks == {"10.0.0.0/8": "hospital LAN"}
    (rules_dir / "geo.yaml").write_text("networks:\n  10.0.0.300/8: LAN\n")
    with pytest.raises(ConfigError, match="not a network"):
        load_rules(rules_dir)


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("10m", 600), ("2h", 7200), ("7d", 604800), (90, 90)])
def test_durations(text: str | int, seconds: int) -> None:
    assert parse_duration(text) == timedelta(seconds=seconds)


def test_the_defaults_are_all_valid() -> None:
    rules = load_rules()
    assert len(rules.rules) == 15
    assert {r.kind for r in rules.rules} == set(KINDS)
