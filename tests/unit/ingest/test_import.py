"""``pacsguard audit import``: idempotent, bad lines named, JSONL / FHIR / DICOM, and a
JSONL export→import round trip that gives the same ``monitor replay`` alerts."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.audit.export_dicom import to_dicom_xml
from pacsguard.audit.export_fhir import to_fhir
from pacsguard.audit.export_files import write_jsonl
from pacsguard.audit.reader import LogReader
from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent
from pacsguard.monitor import Engine, load_rules
from tests.unit.audit.export_samples import sample
from tests.unit.monitor.conftest import Feed

MakeSite = Callable[..., Path]


def _logged(site: Path) -> list[AuditEvent]:
    with open_site(config.load(site)) as opened:
        return list(LogReader(opened.engine).events_after(-1, 100_000))


def _jsonl(path: Path, events: list[AuditEvent]) -> Path:
    with path.open("w") as out:
        write_jsonl(events, out)
    return path


def _import(site: Path, fmt: str, *files: Path, source: str | None = None) -> int:
    extra = ["--source", source] if source else []
    return main(["audit", "import", *map(str, files), "--format", fmt, *extra, "--site", str(site)])


def test_importing_the_same_file_twice_adds_nothing(make_site: MakeSite, tmp_path: Path) -> None:
    site = make_site()
    originals = [sample(t, i) for i, t in enumerate(["login.success", "study.read", "study.export"], 1)]
    path = _jsonl(tmp_path / "a.jsonl", originals)
    assert _import(site, "jsonl", path) == 0
    assert _import(site, "jsonl", path) == 0
    events = _logged(site)
    assert [e.type for e in events] == ["login.success", "study.read", "study.export"]
    for original, event in zip(originals, events, strict=True):
        assert event.occurred_at == original.occurred_at  # the event keeps its own time
        assert (event.actor, event.objects, event.decision) == (original.actor, original.objects, original.decision)
        ingest = event.detail["ingest"]
        assert isinstance(ingest, dict)
        assert (ingest["transport"], ingest["format"], ingest["message_id"]) == ("import", "jsonl", str(original.seq))
    # Another source name is another origin: the same content is then imported again.
    assert _import(site, "jsonl", path, source="other-site") == 0
    assert len(_logged(site)) == 6


def test_a_bad_line_is_named_and_the_rest_loads(
    make_site: MakeSite, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    site = make_site()
    lines = [json.dumps(e) for e in ([{"k": 1}],)]
    good = tmp_path / "good.jsonl"
    _jsonl(good, [sample("study.read", 1), sample("study.query", 2)])
    text = good.read_text().splitlines()
    path = tmp_path / "mixed.jsonl"
    path.write_text("\n".join([text[0], "{broken", *lines, text[1]]) + "\n")
    capsys.readouterr()
    assert _import(site, "jsonl", path) == 1
    err = capsys.readouterr().err
    assert f"{path}:2:" in err
    assert f"{path}:3:" in err
    assert [e.type for e in _logged(site)] == ["study.read", "study.query"]


def test_fhir_ndjson_and_bundle(make_site: MakeSite, tmp_path: Path) -> None:
    site = make_site()
    ndjson = tmp_path / "events.ndjson"
    ndjson.write_text(
        "\n".join(json.dumps(to_fhir(sample(t, i))) for i, t in enumerate(["login.failure", "study.read"]))
    )
    bundle = tmp_path / "bundle.json"
    entries = [{"resource": to_fhir(sample("study.export", 9))}]
    bundle.write_text(json.dumps({"resourceType": "Bundle", "type": "collection", "entry": entries}, indent=2))
    assert _import(site, "fhir", ndjson, bundle) == 0
    assert _import(site, "fhir", bundle) == 0
    assert [e.type for e in _logged(site)] == ["login.failure", "study.read", "study.export"]


def test_dicom_one_per_line_and_one_pretty_document(make_site: MakeSite, tmp_path: Path) -> None:
    site = make_site()
    lines = tmp_path / "audit.xml"
    lines.write_text(
        "\n".join(to_dicom_xml(sample(t, i)).decode() for i, t in enumerate(["study.read", "study.query"]))
    )
    pretty = tmp_path / "one.xml"
    pretty.write_text(to_dicom_xml(sample("login.success", 5)).decode().replace("><", ">\n  <"))
    assert _import(site, "dicom", lines, pretty) == 0
    events = _logged(site)
    assert [e.type for e in events] == ["study.read", "study.query", "login.success"]
    assert events[2].occurred_at == sample("login.success", 5).occurred_at


def _history() -> list[AuditEvent]:
    clock = FakeClock()
    feed = Feed(Engine(load_rules().rules), clock)
    feed("login.success")
    clock.advance(days=2)
    feed.many(9, "login.failure", every=30)
    feed("login.success", device="evil-1")
    feed.spaced([{"study": f"1.2.{i}"} for i in range(16)], "study.export", every=20)
    clock.advance(days=1)
    feed("break_glass.granted", detail={"reason": "trauma"})
    return [replace(e, seq=None) for e in feed.sent]


def test_export_then_import_into_a_fresh_site_gives_the_same_replay_alerts(make_site: MakeSite, tmp_path: Path) -> None:
    first, second = make_site("first"), make_site("second")
    with open_site(config.load(first)) as opened:
        for event in _history():
            opened.audit.emit(event)
    exported, again = tmp_path / "first.jsonl", tmp_path / "second.jsonl"
    assert main(["audit", "export", "--format", "jsonl", "--output", str(exported), "--site", str(first)]) == 0
    assert _import(second, "jsonl", exported) == 0
    assert main(["audit", "export", "--format", "jsonl", "--output", str(again), "--site", str(second)]) == 0

    alerts = []
    for site, events in ((first, exported), (second, again)):
        out = tmp_path / f"{site.name}-alerts.jsonl"
        assert main(["monitor", "replay", "--events", str(events), "--output", str(out), "--site", str(site)]) == 0
        alerts.append(out.read_text().splitlines())
    assert alerts[0], "the history should raise alerts"
    assert {json.loads(a)["rule_id"] for a in alerts[0]} >= {"auth.failed-logins-account", "breakglass.used"}
    assert alerts[1] == alerts[0]
