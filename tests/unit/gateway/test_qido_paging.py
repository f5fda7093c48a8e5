"""QIDO paging fetched progressively upstream: deep pages are exactly the pages of the
filtered whole, denied studies never show, and a page costs only the upstream pages it
needs."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from pacsguard.archives import Archive, DicomJson, QidoQuery
from pacsguard.archives.synthetic import make_study
from pacsguard.domain import Sensitivity
from tests.world import World, run, study_uids

PLAN = 24  # extra north studies; every third one is secret (alice may not see it)


class Counting:
    """An archive that records the paging of every search sent to it (wraps a real one)."""

    def __init__(self, inner: Archive) -> None:
        self.inner = inner
        self.name = inner.name
        self.asked: list[tuple[int | None, int]] = []

    async def search_studies(self, query: QidoQuery) -> list[DicomJson]:
        self.asked.append((query.limit, query.offset))
        return await self.inner.search_studies(query)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


def _seed(world: World) -> tuple[list[str], list[str]]:
    """Add PLAN one-instance north studies; returns (allowed, secret) study UIDs."""
    allowed, secret = [], []
    for n in range(PLAN):
        study = make_study(patient_id=f"N-7{n:02d}", accession=f"D{n}", study_date=date(2024, 4, 1 + n),
                           series=1, instances_per_series=1)  # fmt: skip
        assert run(world.archives["north"].store(study.instances)).ok
        world.site.catalogue.record(study.study_uid, zone="north", archive="north-pacs",
                                    patient_id=f"N-7{n:02d}", modality="CT")  # fmt: skip
        if n % 3 == 2:
            world.site.catalogue.set_sensitivity(study.study_uid, Sensitivity.SECRET, by="olga")
            secret.append(study.study_uid)
        else:
            allowed.append(study.study_uid)
    return allowed, [*secret, world.studies["N2"].study_uid]


@pytest.mark.parametrize("limit", [1, 4, 7])
def test_deep_pages_are_the_pages_of_the_filtered_whole(world: World, limit: int) -> None:
    allowed, secret = _seed(world)
    whole = study_uids(world.get("alice", "/dicomweb/studies"))
    assert set(allowed) <= set(whole)
    assert not set(secret) & set(whole)
    pages = []
    for offset in range(0, len(whole) + limit, limit):
        page = study_uids(world.get("alice", f"/dicomweb/studies?limit={limit}&offset={offset}"))
        assert len(page) <= limit
        pages.extend(page)
    assert pages == whole
    beyond = world.get("alice", f"/dicomweb/studies?limit={limit}&offset={len(whole) + 3}")
    assert (beyond.status_code, beyond.content) == (200, b"[]")


def test_a_page_asks_the_archives_only_for_what_it_needs(world: World) -> None:
    _seed(world)
    north, south = Counting(world.archives["north"]), Counting(world.archives["south"])
    app = world.app_with({"north": north, "south": south})
    first = study_uids(world.get("alice", "/dicomweb/studies?limit=3", app=app))
    assert len(first) == 3
    # one page from every archive at once; north's first 3 hold one secret study: one more page
    assert north.asked[0] == (3, 0)
    assert south.asked == [(3, 0)]
    assert len(north.asked) == 2
    assert north.asked[1][1] == 3
    (event,) = world.events("study.query")
    assert event.detail["returned"] == 3
    assert event.detail["complete"] is False
    examined = event.detail["examined"]
    assert isinstance(examined, int)
    assert examined < PLAN


def test_the_query_event_counts_what_was_examined(world: World) -> None:
    _seed(world)
    world.get("alice", "/dicomweb/studies")
    (event,) = world.events("study.query")
    assert event.detail["complete"] is True
    assert event.detail["examined"] == PLAN + 3
    assert event.detail["filtered"] == PLAN // 3 + 1
    assert event.detail["returned"] == event.detail["matched"] == PLAN - PLAN // 3 + 2


def test_a_cap_stops_each_archive_and_warns(world: World) -> None:
    from pacsguard.gateway import GatewayOptions

    _, secret = _seed(world)
    app = world.app_with(world.archives, GatewayOptions(max_results=5))
    response = world.get("alice", "/dicomweb/studies", app=app)
    found = study_uids(response)
    assert "narrow the search" in response.headers["warning"]
    assert not set(secret) & set(found)
    assert len(found) <= 5 + 1  # at most 5 examined of north, south's one study
