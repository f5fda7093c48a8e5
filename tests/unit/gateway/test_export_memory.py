"""Memory stays flat while a big study is exported through the whole app: the ZIP goes to
a file as the client receives it, and the process's peak RSS is measured around it."""

from __future__ import annotations

import gc
import hashlib
import re
import sys
import zipfile
from datetime import date
from pathlib import Path

import pytest
from pydicom.uid import generate_uid

from pacsguard.archives.synthetic import make_instance
from tests.unit.gateway.exporting import allow_exports, api_headers, stream_to
from tests.world import World, run

INSTANCES = 192  # x 512 KiB of pixels: about 100 MB
BATCH = 16
MAX_GROWTH_KB = 50 * 1024

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self")


def _status(key: str) -> int:
    text = Path("/proc/self/status").read_text()
    found = re.search(rf"^{key}:\s+(\d+) kB", text, flags=re.MULTILINE)
    assert found is not None
    return int(found.group(1))


def _store_big_study(world: World) -> tuple[str, dict[str, str]]:
    """A study of ``INSTANCES`` 512x512 images, stored a batch at a time (never held
    whole); returns its UID and the SHA-256 of each instance by SOP instance UID."""
    study_uid, series_uid = generate_uid(), generate_uid()
    digests: dict[str, str] = {}
    for start in range(0, INSTANCES, BATCH):
        batch = []
        for number in range(start + 1, start + BATCH + 1):
            sop = generate_uid()
            data = make_instance(patient_id="BIG-1", patient_name="Big^Study", study_uid=study_uid,
                                 series_uid=series_uid, sop_uid=sop, study_date=date(2024, 5, 1), number=number,
                                 rows=512, columns=512)  # fmt: skip
            digests[sop] = hashlib.sha256(data).hexdigest()
            batch.append(data)
        assert run(world.archives["north"].store(batch)).ok
    world.site.catalogue.record(study_uid, zone="north", archive=world.archives["north"].name, patient_id="BIG-1",
                                modality="CT")  # fmt: skip
    return study_uid, digests


def test_exporting_a_100_mb_study_keeps_peak_rss_growth_under_50_mb(world: World, tmp_path: Path) -> None:
    allow_exports(world)
    study_uid, digests = _store_big_study(world)
    app, headers = world.app, api_headers(world, "alice")
    target = tmp_path / "export.zip"
    gc.collect()
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak (VmHWM) to the current RSS
    before = _status("VmRSS")
    with target.open("wb") as out:
        got = stream_to(app, "/api/v1/exports", {"studies": [study_uid]}, headers, out.write)
    growth = _status("VmHWM") - before
    assert (got.status, got.complete, got.error) == (200, True, None)
    assert growth < MAX_GROWTH_KB, f"peak RSS grew by {growth} kB"
    with zipfile.ZipFile(target) as archive:
        members = [i for i in archive.infolist() if i.filename.endswith(".dcm")]
        assert len(members) == INSTANCES
        for member in members:
            sop = member.filename.rsplit("/", 1)[1].removesuffix(".dcm")
            digest = hashlib.sha256()
            with archive.open(member) as data:  # read in chunks; the CRC is checked at the end
                for block in iter(lambda: data.read(1 << 20), b""):
                    digest.update(block)
            assert digest.hexdigest() == digests[sop]
    (event,) = world.events("study.export")
    assert (event.objects.count, event.objects.bytes) == (INSTANCES, sum(m.file_size for m in members))
