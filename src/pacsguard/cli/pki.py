"""``pacsguard pki init`` and ``pacsguard pki issue``: the site's development PKI."""

from __future__ import annotations

import ipaddress
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.markup import escape

from pacsguard import config
from pacsguard import pki as pki_files
from pacsguard.cli._common import console, load_settings, site_option

__all__ = ["pki"]


class Refused(click.ClickException):
    """An operation that would destroy something the user did not ask to replace."""

    exit_code = 2


@click.group()
def pki() -> None:
    """A development CA, server and client certificates, and the Ed25519 signing key."""


@pki.command()
@site_option
@click.option(
    "--force", is_flag=True, help="Replace an existing CA and server certificate (the signing key is always kept)."
)
@click.option("--days", type=click.IntRange(1, 36500), default=3650, show_default=True, help="CA validity.")
def init(site: Path | None, force: bool, days: int) -> None:
    """Create the site CA, a server certificate for localhost/127.0.0.1 and the signing key."""
    settings = load_settings(site)
    paths = _init_paths(settings)
    signing_key = paths.pop("signing_key")
    existing = [p for p in paths.values() if p.exists()]
    if existing and not force:
        names = ", ".join(str(p) for p in existing)
        raise Refused(f"{names} exist already; pass --force to replace them (clients trusting the old CA will fail)")
    now = datetime.now(UTC)
    site_name = settings.name.strip()[:40] or "pacsguard"  # a common name holds at most 64 characters
    ca = pki_files.create_ca(now, common_name=f"{site_name} development CA", days=days)
    server = pki_files.issue_server(ca, now, days=min(days, 397))
    _write(lambda: ca.write(paths["ca_cert"], paths["ca_key"]))
    _write(lambda: server.write(paths["server_cert"], paths["server_key"]))
    # The signing key is never replaced: the heads already in the audit log were signed
    # with it, and a new key would make them fail verification.
    if not signing_key.exists():
        _write(lambda: pki_files.make_signing_key(signing_key))
    _say(f"CA certificate      {escape(str(paths['ca_cert']))} (the trust root to give clients)")
    _say(f"  fingerprint       [bold]{ca.fingerprint}[/]")
    _say(f"server certificate  {escape(str(paths['server_cert']))} (localhost, 127.0.0.1)")
    _say(f"  fingerprint       [bold]{server.fingerprint}[/]")
    _say(f"signing key         {escape(str(signing_key))} (Ed25519, mode 0600; kept if it existed)")
    _say(f"private keys        {escape(str(paths['ca_key']))}, {escape(str(paths['server_key']))} (mode 0600)")


@pki.group()
def issue() -> None:
    """Issue a server or client certificate from the site CA."""


@issue.command("server")
@site_option
@click.argument("name")
@click.option("--dns", "dns_names", multiple=True, help="A DNS name for the certificate (repeatable).")
@click.option(
    "--ip", "ips", multiple=True, callback=lambda _c, _p, v: _check_ips(v), help="An IP address (repeatable)."
)
@click.option("--days", type=click.IntRange(1, 3650), default=397, show_default=True)
@click.option("--force", is_flag=True, help="Replace existing files of that name.")
def issue_server(
    site: Path | None, name: str, dns_names: tuple[str, ...], ips: tuple[str, ...], days: int, force: bool
) -> None:
    """A TLS server certificate NAME (default names: localhost and 127.0.0.1)."""
    settings = load_settings(site)
    ca = pki_files.load_ca(settings.path(settings.pki.ca_cert), settings.path(settings.pki.ca_key))
    if not dns_names and not ips:
        dns_names, ips = ("localhost",), ("127.0.0.1",)
    try:
        issued = pki_files.issue_server(ca, datetime.now(UTC), dns_names=dns_names, ips=ips, days=days)
    except ValueError as exc:  # includes UnicodeError: DNS names must be ASCII (A-labels)
        raise click.BadParameter(str(exc), param_hint="--dns") from exc
    _save(settings, "servers", name, issued, force)


@issue.command("client")
@site_option
@click.argument("name")
@click.option("--ae-title", default=None, help="For a DICOM device: its AE title (subject CN=AE title, OU=device).")
@click.option("--days", type=click.IntRange(1, 3650), default=365, show_default=True)
@click.option("--force", is_flag=True, help="Replace existing files of that name.")
def issue_client(site: Path | None, name: str, ae_title: str | None, days: int, force: bool) -> None:
    """A TLS client certificate NAME for a user, or with --ae-title for a DICOM device."""
    settings = load_settings(site)
    ca = pki_files.load_ca(settings.path(settings.pki.ca_cert), settings.path(settings.pki.ca_key))
    try:
        issued = pki_files.issue_client(ca, datetime.now(UTC), name, ae_title=ae_title, days=days)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--ae-title" if ae_title is not None else "NAME") from exc
    _save(settings, "clients", name, issued, force)


def _init_paths(settings: config.Settings) -> dict[str, Path]:
    names = ("ca_cert", "ca_key", "server_cert", "server_key", "signing_key")
    return {n: settings.path(getattr(settings.pki, n)) for n in names}


def _save(settings: config.Settings, kind: str, name: str, issued: pki_files.IssuedCertificate, force: bool) -> None:
    if not name or any(c in name for c in "/\\") or name.startswith("."):
        raise click.BadParameter("a plain file name, without / or a leading dot", param_hint="NAME")
    folder = settings.path(settings.pki.ca_cert).parent / kind
    cert_path, key_path = folder / f"{name}.pem", folder / f"{name}-key.pem"
    existing = [p for p in (cert_path, key_path) if p.exists()]
    if existing and not force:
        raise Refused(f"{', '.join(map(str, existing))} exist already; pass --force to replace them")
    _write(lambda: issued.write(cert_path, key_path))
    _say(f"certificate  {escape(str(cert_path))}")
    _say(f"private key  {escape(str(key_path))} (mode 0600)")
    _say(f"subject      {escape(issued.cert.subject.rfc4514_string())}")
    _say(f"valid until  {issued.cert.not_valid_after_utc.isoformat()}")
    _say(f"fingerprint  [bold]{issued.fingerprint}[/]")


def _say(text: str) -> None:
    # soft_wrap: paths and fingerprints must stay on one line to be copied.
    console.print(text, soft_wrap=True)


def _check_ips(values: Sequence[str]) -> tuple[str, ...]:
    for value in values:
        try:
            ipaddress.ip_address(value)
        except ValueError as exc:
            raise click.BadParameter(f"{value!r} is not an IPv4 or IPv6 address", param_hint="--ip") from exc
    return tuple(values)


def _write(action: Callable[[], object]) -> None:
    try:
        action()
    except OSError as exc:
        raise Refused(f"cannot write {exc.filename}: {exc.strerror}") from exc
