"""``pacsguard audit import``: idempotent, bad lines named, JSONL / FHIR / DICOM, and a
JSONL export→import round trip that gives the same ``monitor replay`` alerts."""

from __future__ import annotations

import gc
import json
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import cast

import pytest
from sqlalchemy import Engine as SqlEngine

from pacsguard import config
from pacsguard.app import open_site
from pacsguard.audit.canonical import Prepared
from pacsguard.audit.export_dicom import to_dicom_xml
from pacsguard.audit.export_fhir import to_fhir
from pacsguard.audit.export_files import write_jsonl
from pacsguard.audit.log import AuditLog, Receipt
from pacsguard.audit.reader import LogReader
from pacsguard.audit.store import Companion
from pacsguard.cli import main
from pacsguard.clock import FakeClock
from pacsguard.domain import AuditEvent
from pacsguard.errors import AuditUnavailable, IngestError
from pacsguard.ingest import IngestStore
from pacsguard.ingest.importer import Importer
from pacsguard.monitor import load_rules
from tests.unit.audit.export_samples import sample
from tests.unit.ingest.conftest import logged
from tests.unit.monitor.conftest import attack_history

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
    return [replace(e, seq=None) for e in attack_history(load_rules().rules, FakeClock()).sent]


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


def _lines(path: Path, events: list[AuditEvent]) -> list[str]:
    return _jsonl(path, events).read_text().splitlines()


def test_duplicates_across_batches_of_one_run_are_imported_once(
    sqlite_engine: SqlEngine, audit_log: AuditLog, clock: FakeClock, tmp_path: Path
) -> None:
    # Batch k+1 is read and parsed before batch k is committed: its duplicates of batch k
    # must still be seen. A bad line repeated is a problem each time, never a duplicate.
    types = ["study.read", "study.query", "study.export"]
    a, b, c = _lines(tmp_path / "abc.jsonl", [sample(t, i) for i, t in enumerate(types, 1)])
    path = tmp_path / "repeats.jsonl"
    path.write_text("\n".join([a, b, a, "{bad", c, b, "{bad", a, c, b, a]) + "\n")
    importer = Importer(audit_log, IngestStore(sqlite_engine), clock, batch=2)
    importer.import_file(path, "jsonl")
    report = importer.report
    assert (report.read, report.imported, report.duplicates) == (9, 3, 6)
    assert [problem.split(": ")[0] for problem in report.problems] == [f"{path}:4", f"{path}:7"]
    assert [e.type for e in logged(sqlite_engine)] == types


class _FailingLog:
    """The real log, refusing every append after the first ``accept`` (a database gone away)."""

    def __init__(self, log: AuditLog, accept: int) -> None:
        self.log = log
        self.accept = accept
        self.options = log.options

    def append_prepared(self, prepared: Prepared, companion: Companion | None = None) -> Receipt:
        if self.accept == 0:
            raise AuditUnavailable("the audit log cannot record events: gone")
        self.accept -= 1
        return self.log.append_prepared(prepared, companion)


def test_an_import_cut_short_keeps_the_keys_of_every_durable_batch(
    sqlite_engine: SqlEngine, audit_log: AuditLog, clock: FakeClock, tmp_path: Path
) -> None:
    types = ["study.read", "study.query", "study.export", "login.success", "login.failure", "study.store"]
    path = _jsonl(tmp_path / "seven.jsonl", [sample(t, i) for i, t in enumerate(types, 1)])
    store = IngestStore(sqlite_engine)
    cut = Importer(cast(AuditLog, _FailingLog(audit_log, accept=4)), store, clock, batch=2)
    with pytest.raises(AuditUnavailable):
        cut.import_file(path, "jsonl")
    # batches 1 and 2 were durable and their keys recorded before batch 3 was appended
    assert cut.report.imported == 4
    rerun = Importer(audit_log, store, clock, batch=2)
    rerun.import_file(path, "jsonl")
    assert (rerun.report.imported, rerun.report.duplicates) == (2, 4)
    assert [e.type for e in logged(sqlite_engine)] == types


def test_an_import_leaves_the_garbage_collector_as_it_found_it(
    sqlite_engine: SqlEngine, audit_log: AuditLog, clock: FakeClock, tmp_path: Path
) -> None:
    path = _jsonl(tmp_path / "one.jsonl", [sample("study.read", 1)])
    thresholds, frozen = gc.get_threshold(), gc.get_freeze_count()
    importer = Importer(audit_log, IngestStore(sqlite_engine), clock)
    importer.import_file(path, "jsonl")
    with pytest.raises(IngestError):
        importer.import_file(tmp_path / "missing.jsonl", "jsonl")
    assert (gc.get_threshold(), gc.get_freeze_count()) == (thresholds, frozen)
    assert importer.report.imported == 1


def test_ndjson_lines_end_at_newlines_only(make_site: MakeSite, tmp_path: Path) -> None:
    # A JSON string may hold U+2028 raw (str.splitlines would cut the line there); CRLF ends a line.
    site = make_site()
    resources = [to_fhir(sample(t, i)) for i, t in enumerate(["login.failure", "study.read"])]
    resources[0]["outcomeDesc"] = "line\u2028separator"
    path = tmp_path / "events.ndjson"
    path.write_bytes("\r\n".join(json.dumps(r, ensure_ascii=False) for r in resources).encode() + b"\r\n")
    assert _import(site, "fhir", path) == 0
    assert [e.type for e in _logged(site)] == ["login.failure", "study.read"]
