"""Site settings: ``pacsguard.toml`` plus a few environment overrides, loaded once.

``load(site, environ)`` returns a frozen ``Settings``; the composition root passes each
component only its own part. Every section is documented in the scaffold that
``pacsguard init`` writes (``site_template/pacsguard.toml``).
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, ValidationInfo, field_validator

from pacsguard.errors import ConfigError, Problem

__all__ = [
    "ArchiveSettings",
    "AuditSettings",
    "AuthSettings",
    "LockoutSettings",
    "OidcSettings",
    "PasswordPolicy",
    "PkiSettings",
    "ReceiverSettings",
    "ServerSettings",
    "SessionSettings",
    "Settings",
    "ShareSettings",
    "ShareSmtpSettings",
    "StorageSettings",
    "SyslogSettings",
    "load",
    "resolve_site",
]

SETTINGS_FILE = "pacsguard.toml"
Seconds = Annotated[float, Field(gt=0)]


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StorageSettings(_Section):
    """``url``: an SQLAlchemy URL. Empty means SQLite in the site directory."""

    url: str = ""
    echo: bool = False


class PasswordPolicy(_Section):
    min_length: int = Field(12, ge=8)
    max_length: int = Field(256, ge=16)
    min_classes: int = Field(3, ge=1, le=4)  # of lower, upper, digit, other
    forbid_username: bool = True


class LockoutSettings(_Section):
    """More than ``max_failures`` failures within ``window`` locks for ``duration``."""

    max_failures: int = Field(8, ge=1)
    window_seconds: Seconds = 600
    duration_seconds: Seconds = 900

    @property
    def window(self) -> timedelta:
        return timedelta(seconds=self.window_seconds)

    @property
    def duration(self) -> timedelta:
        return timedelta(seconds=self.duration_seconds)


class SessionSettings(_Section):
    idle_timeout_seconds: Seconds = 1800
    absolute_timeout_seconds: Seconds = 43200

    @property
    def idle_timeout(self) -> timedelta:
        return timedelta(seconds=self.idle_timeout_seconds)

    @property
    def absolute_timeout(self) -> timedelta:
        return timedelta(seconds=self.absolute_timeout_seconds)


class OidcSettings(_Section):
    """An OIDC issuer whose bearer JWTs are accepted; empty ``issuer`` disables it."""

    issuer: str = ""
    audience: str = ""
    jwks_file: str = ""  # a JWKS JSON file; relative paths are under the site
    algorithms: tuple[str, ...] = ("RS256", "ES256", "EdDSA")
    subject_claim: str = "sub"
    leeway_seconds: float = Field(30, ge=0)


class AuthSettings(_Section):
    password: PasswordPolicy = PasswordPolicy()
    lockout: LockoutSettings = LockoutSettings()
    session: SessionSettings = SessionSettings()
    oidc: OidcSettings = OidcSettings()
    totp_issuer: str = "pacsguard"
    api_token_max_days: int = Field(365, ge=1)


class PkiSettings(_Section):
    """Paths relative to the site directory."""

    ca_cert: str = "pki/ca.pem"
    ca_key: str = "pki/ca-key.pem"
    server_cert: str = "pki/server.pem"
    server_key: str = "pki/server-key.pem"
    signing_key: str = "pki/signing-key.pem"


class ServerSettings(_Section):
    host: str = "127.0.0.1"
    port: int = Field(8443, ge=0, le=65535)
    public_url: str = ""


class SyslogSettings(_Section):
    """``[audit.syslog]``: the Audit Record Repository and the local spool.

    Paths are relative to the site directory. ``sd_id`` should carry the site's own IANA
    private enterprise number; the default uses 32473, the number RFC 5612 reserves for
    documentation.
    """

    host: str
    port: int = Field(6514, ge=1, le=65535)
    ca_file: str = "pki/arr-ca.pem"
    client_cert: str | None = None
    client_key: str | None = None
    server_name: str | None = None  # checked against the ARR certificate; default: host
    spool_dir: str = "spool/syslog"
    spool_max_bytes: int = Field(64 << 20, ge=4096)
    app_name: str = Field("pacsguard", pattern=r"^[!-~]{1,48}$")
    sd_id: str = Field("pacsguard@32473", pattern=r"^[!#-<>-\\^-~]{1,32}$")
    msgid: str | None = Field(None, pattern=r"^[!-~]{1,32}$")  # fixed MSGID (e.g. IHE+RFC-3881); default: event type
    hostname: str | None = None
    connect_timeout: float = Field(10.0, gt=0)
    retry_initial: float = Field(1.0, gt=0)
    retry_max: float = Field(300.0, gt=0)
    batch: int = Field(200, ge=1)
    confirm_seconds: float = Field(0.5, ge=0)  # wait for a refusal after a new connection's first write


class ReceiverSettings(_Section):
    """``[audit.receiver]``: the ATNA Audit Record Repository pacsguard runs (IHE ITI-20).

    Syslog over TLS (RFC 5425) on ``tls_port`` with the site's ``[pki]`` server
    certificate, client certificates checked against the site CA (required when
    ``require_client_cert``); syslog over UDP (RFC 5426) on ``udp_port`` if set. A port
    of 0 picks a free one. Messages over ``max_message_bytes`` are quarantined; the
    queue between network and log holds ``queue_size`` messages; the quarantine keeps
    ``quarantine_rows`` rows. Messages are parsed in ``parse_processes`` processes of
    their own (two by default), so that parsing runs on other cores beside TLS and the
    audit log; with 0, everything runs in the serving process (one core). A parsing
    process that takes longer than ``parse_timeout_seconds`` over a batch counts as hung:
    the processes are restarted and the batch parsed again, a message at a time.
    """

    host: str = "127.0.0.1"
    tls_port: int | None = Field(6514, ge=0, le=65535)
    udp_port: int | None = Field(None, ge=0, le=65535)
    require_client_cert: bool = True
    max_message_bytes: int = Field(64 * 1024, ge=1024, le=16 << 20)
    queue_size: int = Field(10_000, ge=1)
    quarantine_rows: int = Field(10_000, ge=1)
    parse_processes: int = Field(2, ge=0, le=64)
    parse_timeout_seconds: float = Field(60.0, gt=0, le=3600)


class AuditSettings(_Section):
    """A signed head every ``head_every_events`` events or ``head_every_seconds``; a
    witness file (heads as JSON lines, site-relative); the bound on an event's detail."""

    head_every_events: int = Field(1000, ge=1)
    head_every_seconds: float = Field(60, gt=0)
    witness_file: str = ""
    max_detail_bytes: int = Field(8192, ge=512)
    syslog: SyslogSettings | None = None  # forward every event to an ATNA repository (IHE ITI-20)
    receiver: ReceiverSettings | None = None  # receive ATNA messages from other systems (off by default)


class ArchiveSettings(_Section):
    """One archive behind the gateway: ``url`` of a DICOMweb server (Orthanc, dcm4chee, …),
    or empty for the embedded store in ``archive/<name>`` of the site. ``admin_url`` is
    Orthanc's REST root, used only to delete studies (its DICOMweb plugin cannot)."""

    name: Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")]
    zone: str
    url: str = ""
    admin_url: str = ""


class ShareSmtpSettings(_Section):
    """``[shares.smtp]``: the mail relay that sends share recipients their one-time codes.
    Empty ``host``: links with a recipient e-mail cannot be created. ``password_env`` names
    the environment variable holding the password; ``ca_file`` (site-relative) is the CA
    the relay's certificate must chain to (the system's trust store otherwise)."""

    host: str = ""
    port: int = Field(587, ge=1, le=65535)
    starttls: bool = True
    sender: str = Field("pacsguard@localhost", pattern=r"^[^@\s]+@[^@\s]+$")
    username: str = ""
    password_env: str = ""
    ca_file: str = ""
    timeout_seconds: Seconds = 10


class ShareSettings(_Section):
    """``[shares]``: share links. A link lives ``default_days`` unless its creator asks
    for another period, never more than ``max_days``; it may be opened ``default_max_opens``
    times (at most ``max_opens_limit``). A one-time code is valid ``code_ttl_seconds``;
    ``max_attempts`` wrong passcodes or codes lock the link; after the passcode or code a
    recipient's cookie lasts ``session_seconds``."""

    model_config = ConfigDict(extra="forbid", frozen=True, validate_default=True)  # defaults meet the limits too

    max_days: float = Field(30, gt=0)
    default_days: float = Field(7, gt=0)
    max_opens_limit: int = Field(100, ge=1)
    default_max_opens: int = Field(10, ge=1)
    max_studies: int = Field(20, ge=1, le=1000)
    min_passcode_length: int = Field(8, ge=4, le=128)
    code_ttl_seconds: Seconds = 600
    max_attempts: int = Field(5, ge=1, le=100)
    session_seconds: Seconds = 900
    smtp: ShareSmtpSettings = ShareSmtpSettings()

    @field_validator("default_days")
    @classmethod
    def _within_max_days(cls, value: float, info: ValidationInfo) -> float:
        limit = info.data.get("max_days")
        if limit is not None and value > limit:
            raise ValueError(f"default_days ({value}) exceeds max_days ({limit})")
        return value

    @field_validator("default_max_opens")
    @classmethod
    def _within_limit(cls, value: int, info: ValidationInfo) -> int:
        limit = info.data.get("max_opens_limit")
        if limit is not None and value > limit:
            raise ValueError(f"default_max_opens ({value}) exceeds max_opens_limit ({limit})")
        return value

    @property
    def default_period(self) -> timedelta:
        return timedelta(days=self.default_days)

    @property
    def max_period(self) -> timedelta:
        return timedelta(days=self.max_days)


class Settings(_Section):
    """Everything ``pacsguard.toml`` can say; ``site`` is where it was loaded from."""

    site: Path
    name: str = "pacsguard site"
    storage: StorageSettings = StorageSettings()
    auth: AuthSettings = AuthSettings()
    pki: PkiSettings = PkiSettings()
    server: ServerSettings = ServerSettings()
    audit: AuditSettings = AuditSettings()
    shares: ShareSettings = ShareSettings()
    archives: tuple[ArchiveSettings, ...] = ()

    @property
    def database_url(self) -> str:
        return self.storage.url or f"sqlite:///{self.site / 'pacsguard.db'}"

    def path(self, relative: str) -> Path:
        """A site-relative path from the settings, made absolute."""
        p = Path(relative)
        return p if p.is_absolute() else self.site / p


# Environment overrides: PACSGUARD_STORAGE_URL=... sets [storage] url.
_ENV_PREFIX = "PACSGUARD_"
_ENV_KEYS = {"STORAGE_URL": ("storage", "url"), "SERVER_PORT": ("server", "port")}


def resolve_site(site: str | Path | None, environ: Mapping[str, str] | None = None) -> Path:
    """``--site``, else ``$PACSGUARD_SITE``, else the current directory."""
    env = os.environ if environ is None else environ
    return Path(site or env.get("PACSGUARD_SITE") or ".").resolve()


def load(site: str | Path, environ: Mapping[str, str] | None = None) -> Settings:
    """Read ``pacsguard.toml`` in ``site``; raises ``ConfigError`` naming file, line and key."""
    site = Path(site).resolve()
    env = os.environ if environ is None else environ
    path = site / SETTINGS_FILE
    if not path.is_file():
        raise ConfigError(Problem(path, "no pacsguard.toml here; create a site with 'pacsguard init DIR'"))
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        raw: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"at line (\d+)", str(exc))
        raise ConfigError(Problem(path, f"not valid TOML: {exc}", int(match.group(1)) if match else None)) from exc
    for name, (section, key) in _ENV_KEYS.items():
        if _ENV_PREFIX + name in env:
            raw.setdefault(section, {})[key] = env[_ENV_PREFIX + name]
    try:
        return Settings.model_validate({**raw, "site": site})
    except ValidationError as exc:
        raise ConfigError([_toml_problem(path, text, item) for item in exc.errors()]) from exc


def _toml_problem(path: Path, text: str, item: Any) -> Problem:
    loc = [str(p) for p in item["loc"]]
    message = "unknown key" if item["type"] == "extra_forbidden" else item["msg"]
    return Problem(path, message, _toml_line(text, loc), ".".join(loc))


def _toml_line(text: str, loc: list[str]) -> int | None:
    """Best effort: the line of ``key =`` inside ``[section]`` (tomllib keeps no positions)."""
    section, key = (".".join(loc[:-1]), loc[-1]) if len(loc) > 1 else ("", loc[0] if loc else "")
    current = ""
    for number, line in enumerate(text.splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("[") and stripped.endswith("]"):
            current = stripped.strip("[]").strip()
            if current == ".".join(loc):
                return number
        elif current == section and re.match(rf"{re.escape(key)}\s*=", stripped):
            return number
    return None
