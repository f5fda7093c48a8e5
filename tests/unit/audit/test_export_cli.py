"""``export`` command: formats, time bounds, output files, and clear errors (never tracebacks)."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta
from pathlib import Path

import pytest
from fhir.resources.R4B.auditevent import AuditEvent as FhirAuditEvent
from lxml import etree

from pacsguard.audit.export_files import read_jsonl, write_jsonl
from pacsguard.cli._common import run_guarded
from pacsguard.cli.audit_export import export
from tests.unit.audit.export_samples import T0, sample
from tests.unit.audit.test_export_dicom import SCHEMA

TYPES = ["login.success", "study.query", "study.read", "share.opened", "containment.ip_blocked"]


@pytest.fixture
def jsonl(tmp_path: Path) -> Path:
    path = tmp_path / "events.jsonl"
    with path.open("w", encoding="utf-8") as f:
        write_jsonl([sample(t, seq) for seq, t in enumerate(TYPES, start=1)], f)
    return path


def _run(*argv: str) -> int:
    return run_guarded(export, list(argv))


def test_jsonl_export_within_bounds_to_a_file(jsonl: Path, tmp_path: Path) -> None:
    out = tmp_path / "out.jsonl"
    since, until = (T0 + timedelta(seconds=2)).isoformat(), (T0 + timedelta(seconds=4)).isoformat()
    assert (
        _run("--format", "jsonl", "--from-jsonl", str(jsonl), "--since", since, "--until", until, "--output", str(out))
        == 0
    )
    assert [e.seq for e in read_jsonl(out.read_text().splitlines())] == [2, 3]
    assert not list(tmp_path.glob("*.part"))


def test_dicom_export_is_one_valid_message_per_line(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--format", "dicom", "--from-jsonl", str(jsonl), "--audit-source-id", "pacs-a") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == len(TYPES)
    schema = etree.RelaxNG(etree.parse(str(SCHEMA)))
    for line in lines:
        doc = etree.fromstring(line.encode())
        assert schema.validate(doc), schema.error_log
        assert doc.find("AuditSourceIdentification").get("AuditSourceID") == "pacs-a"  # type: ignore[union-attr]


def test_fhir_export_is_ndjson_that_parses(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--format", "fhir", "--from-jsonl", str(jsonl)) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [FhirAuditEvent.model_validate(json.loads(line)).id for line in lines] == [
        f"pacsguard-{n}" for n in range(1, 6)
    ]


def test_csv_export_has_header_and_rows(jsonl: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--format", "csv", "--from-jsonl", str(jsonl), "--since", T0.replace(tzinfo=None).isoformat()) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["type"] for r in rows] == TYPES


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--since", "yesterday"], "not an ISO 8601 time"),
        (["--since", "2026-01-02", "--until", "2026-01-01"], "must be before"),
        (["--format", "xml"], "xml"),
    ],
)
def test_bad_options_exit_2_with_a_message(
    jsonl: Path, args: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    argv = ["--format", "jsonl", "--from-jsonl", str(jsonl), *args]
    assert _run(*argv) == 2
    assert message in capsys.readouterr().err


def test_a_corrupt_input_names_file_and_line_and_leaves_no_output(
    jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with jsonl.open("a") as f:
        f.write("{broken\n")
    out = tmp_path / "out.csv"
    assert _run("--format", "csv", "--from-jsonl", str(jsonl), "--output", str(out)) == 2
    err = capsys.readouterr().err
    assert "events.jsonl:6" in err
    assert "Traceback" not in err
    assert not out.exists()
    assert not list(tmp_path.glob("*.part"))


def test_a_missing_input_file_is_bad_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert _run("--format", "csv", "--from-jsonl", str(tmp_path / "nope.jsonl")) == 2
    assert "does not exist" in capsys.readouterr().err
