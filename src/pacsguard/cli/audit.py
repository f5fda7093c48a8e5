"""``pacsguard audit …``: verify the log, print the signed head, prove events and consistency, archive, prune.

Exit codes: 0 everything verifies, 1 a finding (the log does not verify), 2 bad input.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import click
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from sqlalchemy import Engine, func, select

from pacsguard.audit import load_public_key, load_signing_key, verify
from pacsguard.audit.archive import SEGMENT_LEVEL, archive_segments, verify_segments
from pacsguard.audit.proofs import consistency, inclusion
from pacsguard.audit.prune import check_pruned_files, prune
from pacsguard.audit.store import AuditStore, to_us
from pacsguard.cli import audit_export, audit_import
from pacsguard.cli._common import console, err_console, load_settings, site_option
from pacsguard.cli._directory import open_site_for_command, record_log_use
from pacsguard.config import Settings
from pacsguard.directory import Operator
from pacsguard.domain.events import Actor, AuditEvent, JsonValue
from pacsguard.errors import AuditError, AuditIntegrityError
from pacsguard.storage import make_engine, migrate
from pacsguard.storage.audit_tables import audit_events

__all__ = ["audit"]


@click.group()
def audit() -> None:
    """The tamper-evident audit log: verify, heads, proofs."""


@contextmanager
def _engine(settings: Settings) -> Iterator[Engine]:
    engine = make_engine(settings.database_url, echo=settings.storage.echo)
    try:
        migrate(engine)
        yield engine
    finally:
        engine.dispose()


def _print_json(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True))


def _public_key(settings: Settings, path: Path | None) -> Ed25519PublicKey | None:
    if path is not None:
        return load_public_key(path)
    site_key = settings.path(settings.pki.signing_key)
    if site_key.exists():
        return load_public_key(site_key)
    err_console.print(f"[yellow]warning:[/] no key at {site_key}: head signatures are not checked (use --public-key)")
    return None


@audit.command("verify")
@site_option
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Ed25519 public key (PEM) the heads must be signed with (default: the site's signing key).",
)
@click.option(
    "--workers",
    type=click.IntRange(1, 64),
    default=None,
    help="Processes that check events (default: 2 on a log over 131,072 events with 2 cores, else 1).",
)
@click.option(
    "--segments",
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    default=None,
    help="Also check the archive segments in this directory (written by 'pacsguard audit archive').",
)
def verify_command(site: Path | None, public_key: Path | None, workers: int | None, segments: Path | None) -> None:
    """Recompute every event, the Merkle tree and every signed head; exit 1 on the first difference."""
    settings = load_settings(site)
    key = _public_key(settings, public_key)
    with _engine(settings) as engine:
        if segments is not None:
            _verify_segments(engine, segments, key)
        columns = [TextColumn("verifying"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn()]
        with Progress(*columns, console=err_console, transient=True) as progress:
            task = progress.add_task("events", total=None)
            report = verify(
                engine,
                key,
                progress=lambda done, total: progress.update(task, completed=done, total=total),
                workers=workers,
            )
    for pruned in report.pruned:
        console.print(f"events {pruned.first}..{pruned.end - 1}: pruned, segment {pruned.file}", markup=False)
    if report.ok:
        console.print(
            f"[green]ok:[/] {report.size} events, {report.heads_checked} signed heads verify; root {report.root.hex()}"
        )
        return
    finding = report.first()
    assert finding is not None
    console.print(f"[bold red]FAILED at seq {finding.seq}[/] ({finding.kind}): {finding.message}", markup=True)
    for other in report.findings:
        if other is not finding:
            console.print(f"  also at seq {other.seq} ({other.kind}): {other.message}", markup=False)
    raise AuditIntegrityError(f"the audit log does not verify: the first difference is at seq {finding.seq}")


@audit.command("head")
@site_option
def head_command(site: Path | None) -> None:
    """Print the latest signed tree head as JSON, for external witnessing."""
    settings = load_settings(site)
    with _engine(settings) as engine:
        head = AuditStore(engine).latest_head()
    if head is None:
        raise AuditError("no signed head yet: run 'pacsguard audit sign-head'")
    _print_json(head.to_json())


@audit.command("sign-head")
@site_option
def sign_head_command(site: Path | None) -> None:
    """Make a signed tree head now with the site's signing key, and print it."""
    # Through the site's own log, so the head also reaches the configured witnesses.
    head = open_site_for_command(load_settings(site)).audit.sign_head()
    _print_json(head.to_json())


@audit.command("prove")
@site_option
@click.argument("seq", type=click.IntRange(min=0))
@click.option("--size", type=click.IntRange(min=1), default=None, help="Tree size (default: the newest signed head).")
def prove_command(site: Path | None, seq: int, size: int | None) -> None:
    """Print an inclusion proof (RFC 9162) of event SEQ against a signed head."""
    settings = load_settings(site)
    with _engine(settings) as engine:
        proof = inclusion(engine, seq, size)
    _print_json(proof.to_json())


@audit.command("consistency")
@site_option
@click.argument("old", type=click.IntRange(min=1))
@click.argument("new", type=click.IntRange(min=1))
def consistency_command(site: Path | None, old: int, new: int) -> None:
    """Print a consistency proof (RFC 9162) that the log at size OLD is a prefix of the log at NEW."""
    settings = load_settings(site)
    with _engine(settings) as engine:
        proof = consistency(engine, old, new)
    _print_json(proof.to_json())


def _verify_segments(engine: Engine, directory: Path, key: Ed25519PublicKey | None) -> None:
    if key is None:
        raise click.BadParameter("checking segments needs the site's public key", param_hint="--public-key")
    findings = verify_segments(directory, key) + check_pruned_files(engine, directory)
    if findings:
        for finding in findings:
            console.print(f"[bold red]segment FAILED at seq {finding.seq}[/] ({finding.kind}): {finding.message}")
        raise AuditIntegrityError(f"the archive segments in {directory} do not verify")
    count = len(list(directory.glob("segment-*.manifest.json")))
    console.print(f"[green]ok:[/] {count} archive segments verify against their signed heads")


@audit.command("archive")
@site_option
@click.option("--before", "before", required=True, help="A seq, or an ISO date/time: archive the events before it.")
@click.option(
    "--output", required=True, type=click.Path(file_okay=False, path_type=Path), help="Directory for the segments."
)
@click.option(
    "--level",
    type=click.IntRange(0, 40),
    default=SEGMENT_LEVEL,
    show_default=True,
    help="Segment size as a power of two (16: 65,536 events per segment).",
)
def archive_command(site: Path | None, before: str, output: Path, level: int) -> None:
    """Write the oldest events as signed JSONL segments (whole subtrees only); the rows are kept."""
    opened = open_site_for_command(load_settings(site))
    end = _before_seq(opened.engine, before)
    record_log_use(opened, archive=str(output), before=end, level=level)
    opened.audit.sign_head()  # a head that covers every segment, for the manifests
    key = load_signing_key(opened.settings.path(opened.settings.pki.signing_key))
    written = archive_segments(opened.engine, end, output, key, level=level)
    console.print(f"archived events 0..{written[-1].end - 1} in {len(written)} segments to {output}")


@audit.command("prune")
@site_option
@click.option("--before", "before", required=True, help="A seq, or an ISO date/time: prune the events before it.")
@click.option(
    "--segments",
    required=True,
    type=click.Path(file_okay=False, exists=True, path_type=Path),
    help="The directory of archive segments (written by 'pacsguard audit archive').",
)
@click.option(
    "--public-key",
    type=click.Path(dir_okay=False, exists=True, path_type=Path),
    default=None,
    help="Ed25519 public key (PEM) the segments are signed with (default: the site's signing key).",
)
def prune_command(site: Path | None, before: str, segments: Path, public_key: Path | None) -> None:
    """Delete the rows of exported segments before a seq or date; the tree hashes are kept.

    Only whole segments that verify (signature, file hash, signed head, and the log's own
    leaf hashes) are pruned; the prune is recorded as ``audit.pruned`` first.
    """
    opened = open_site_for_command(load_settings(site))
    key = _public_key(opened.settings, public_key)
    if key is None:
        raise click.BadParameter("pruning needs the site's public key to check the segments", param_hint="--public-key")
    end = _before_seq(opened.engine, before)
    actor = Actor(principal_id=Operator.current().id)

    def record(detail: dict[str, JsonValue]) -> None:
        opened.audit.emit(AuditEvent("audit.pruned", opened.clock.now(), actor=actor, detail=detail))

    done = prune(opened.engine, end, segments, key, now=opened.clock.now(), record=record)
    files = ", ".join(p.file for p in done)
    console.print(f"pruned events {done[0].first}..{done[-1].end - 1} ({len(done)} segments: {files})")


def _before_seq(engine: Engine, before: str) -> int:
    """``--before`` as a seq: an integer, or the first event that occurred at or after a date/time."""
    if before.isdigit():
        return int(before)
    try:
        when = datetime.fromisoformat(before)
    except ValueError:
        raise click.BadParameter(f"{before!r} is neither a seq nor an ISO date/time", param_hint="--before") from None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    with engine.connect() as conn:
        first = conn.execute(select(func.min(audit_events.c.seq)).where(audit_events.c.occurred_us >= to_us(when)))
        seq = first.scalar()
    return AuditStore(engine).size() if seq is None else int(seq)


audit.add_command(audit_export.export)
audit.add_command(audit_import.import_command)
