"""The study catalogue on both backends: recording, batched look-ups, classification,
zone rules, and ``sync`` from an archive (the embedded store stands in for an upstream)."""

from __future__ import annotations

import asyncio
import re
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine

from pacsguard.archives import (
    EmbeddedArchive,
    SensitivityRule,
    StudyCatalogue,
    ZoneRules,
    load_sensitivity_rules,
    load_site_key,
    sync,
)
from pacsguard.archives.synthetic import make_study
from pacsguard.clock import FakeClock
from pacsguard.domain import RecordingSink, Sensitivity
from pacsguard.errors import ArchiveNotFound, ConfigError

RULES = {
    "north": ZoneRules(
        (
            SensitivityRule(Sensitivity.SECRET, description=re.compile(r"(?i)psych")),
            SensitivityRule(Sensitivity.CONFIDENTIAL, modality="MR"),
        ),
        Sensitivity.INTERNAL,
    )
}


@pytest.fixture
def catalogue(engine: Engine, events: RecordingSink, clock: FakeClock) -> StudyCatalogue:
    return StudyCatalogue(engine, events=events, clock=clock, rules=RULES)


def test_record_applies_zone_rules_first_match_wins(catalogue: StudyCatalogue) -> None:
    psych_mr = catalogue.record("1.2.1", zone="north", archive="a", modality="MR", description="Psychiatry head")
    mr = catalogue.record("1.2.2", zone="north", archive="a", modality="CT,MR", description="Head")
    ct = catalogue.record(
        "1.2.3", zone="north", archive="a", modality="CT", patient_id="P1", study_date=date(2024, 1, 2)
    )
    other_zone = catalogue.record("1.2.4", zone="south", archive="b", modality="MR")
    assert psych_mr.sensitivity is Sensitivity.SECRET
    assert mr.sensitivity is Sensitivity.CONFIDENTIAL
    assert ct.sensitivity is Sensitivity.INTERNAL
    assert other_zone.sensitivity is Sensitivity.UNASSIGNED
    assert catalogue.get("1.2.3") == ct
    assert ct.patient_id == "P1"
    assert ct.study_date == date(2024, 1, 2)
    assert catalogue.get("9.9") is None


def test_the_first_zone_keeps_the_study_and_its_classification(
    catalogue: StudyCatalogue, clock: FakeClock, events: RecordingSink
) -> None:
    catalogue.record("1.5", zone="north", archive="a", modality="CT")
    catalogue.set_sensitivity("1.5", Sensitivity.TOP_SECRET, "officer-1", reason="VIP")
    clock.advance(timedelta(minutes=5))
    again = catalogue.record("1.5", zone="south", archive="b", modality="MR", description="late series")
    assert again.zone == "north"
    assert again.sensitivity is Sensitivity.TOP_SECRET
    assert again.modality == "CT,MR"
    assert again.updated_at == clock.now()
    [event] = events.of_type("study.classify")
    assert event.actor.principal_id == "officer-1"
    assert event.objects.study_uid == "1.5"
    assert event.objects.zone == "north"
    assert event.detail == {"from": 2, "to": 5, "reason": "VIP"}
    with pytest.raises(ArchiveNotFound):
        catalogue.set_sensitivity("7.7", Sensitivity.SECRET, "officer-1")


def test_get_many_answers_in_batches(catalogue: StudyCatalogue) -> None:
    for n in range(1, 602):
        catalogue.record(f"2.{n}", zone="north", archive="a", modality="CT")
    found = catalogue.get_many([f"2.{n}" for n in range(1, 701)])
    assert len(found) == 601
    assert found["2.601"].zone == "north"


def test_a_classification_the_log_refuses_is_undone(engine: Engine, clock: FakeClock) -> None:
    class Refusing:
        def emit(self, event: object) -> None:
            raise RuntimeError("audit log down")

    catalogue = StudyCatalogue(engine, events=Refusing(), clock=clock, rules=RULES)
    catalogue.record("1.6", zone="north", archive="a", modality="CT")
    with pytest.raises(RuntimeError):
        catalogue.set_sensitivity("1.6", Sensitivity.SECRET, "officer-1")
    entry = catalogue.get("1.6")
    assert entry is not None
    assert entry.sensitivity is Sensitivity.INTERNAL


def test_sync_pages_resumes_and_restarts(catalogue: StudyCatalogue, engine: Engine, tmp_path: Path) -> None:
    upstream = EmbeddedArchive("up", engine, tmp_path / "up", load_site_key(tmp_path / "k"))
    studies = [make_study(patient_id=f"P{n}", modality="MR" if n % 2 else "CT", instances_per_series=1)
               for n in range(7)]  # fmt: skip

    async def go() -> None:
        for study in studies:
            assert (await upstream.store(study.instances)).ok
        seen: list[int] = []
        first = await sync(upstream, "north", catalogue, seen.append, page_size=3, max_pages=1)
        assert (first.recorded, first.next_offset, first.finished) == (3, 3, False)
        second = await sync(upstream, "north", catalogue, seen.append, page_size=3)
        assert (second.started_at_offset, second.recorded, second.finished) == (3, 4, True)
        assert seen == [3, 6, 7]
        third = await sync(upstream, "north", catalogue, page_size=3)
        assert third.started_at_offset == 0

    asyncio.run(go())
    found = catalogue.get_many(s.study_uid for s in studies)
    assert len(found) == 7
    assert {e.patient_id for e in found.values()} == {f"P{n}" for n in range(7)}
    assert found[studies[1].study_uid].sensitivity is Sensitivity.CONFIDENTIAL
    assert found[studies[0].study_uid].study_date == date(2024, 3, 15)


def test_rules_file_loads_and_errors_are_located(tmp_path: Path) -> None:
    good = tmp_path / "sensitivity.yaml"
    good.write_text("zones:\n  north:\n    default: 2\n    rules:\n      - {modality: MG, sensitivity: 3}\n")
    rules = load_sensitivity_rules(good)
    assert rules["north"].classify("MG", "") is Sensitivity.CONFIDENTIAL
    assert rules["north"].classify("CT", "") is Sensitivity.INTERNAL
    bad = tmp_path / "bad.yaml"
    bad.write_text("zones:\n  north:\n    rules:\n      - {description: '(', sensitivity: 9}\n")
    with pytest.raises(ConfigError) as caught:
        load_sensitivity_rules(bad)
    assert all(p.line == 4 for p in caught.value.problems)
    assert len(caught.value.problems) == 2
