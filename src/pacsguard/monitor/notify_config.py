"""``notify.yaml``: the site's notification channels, validated with file, line and key.

```yaml
webhook: {url: "https://soc.example/hooks/pacsguard", secret_file: pki/webhook.secret}
email:
  host: smtp.example
  port: 587
  sender: pacsguard@example
  to: [security@example]
  ca_file: pki/smtp-ca.pem      # optional: the system's trust store otherwise
  username: pacsguard           # optional, with password_file
  password_file: pki/smtp.password
syslog: {host: siem.example, port: 6514, ca_file: pki/siem-ca.pem}   # ca_file: TLS
```

Paths are relative to the site directory; secrets live in files, never in the YAML.
"""

from __future__ import annotations

import ssl
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field

from pacsguard.errors import ConfigError, Problem
from pacsguard.monitor.notify import EmailNotifier, Notifier, SyslogNotifier, WebhookNotifier
from pacsguard.yamlfile import load, validate

__all__ = ["NOTIFY_FILE", "NotifyFile", "load_notifiers"]

NOTIFY_FILE = "notify.yaml"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class WebhookSection(_Section):
    url: str = Field(pattern=r"^https?://")
    secret_file: str
    timeout: float = Field(5.0, gt=0)


class EmailSection(_Section):
    host: str
    port: int = Field(587, ge=1, le=65535)
    sender: str
    to: list[str] = Field(min_length=1)
    ca_file: str | None = None
    username: str | None = None
    password_file: str | None = None


class SyslogSection(_Section):
    host: str
    port: int = Field(6514, ge=1, le=65535)
    ca_file: str | None = None


class NotifyFile(_Section):
    """The whole file: each channel optional."""

    webhook: WebhookSection | None = None
    email: EmailSection | None = None
    syslog: SyslogSection | None = None


def load_notifiers(site: Path) -> dict[str, Notifier]:
    """The notifiers ``site/notify.yaml`` configures (none without the file).

    Raises ``ConfigError`` naming the file, line and key of a bad entry or unreadable secret.
    """
    path = site / NOTIFY_FILE
    if not path.exists():
        return {}
    data, locator = load(path)
    spec = validate(NotifyFile, data or {}, locator)
    out: dict[str, Notifier] = {}
    if spec.webhook is not None:
        secret = _read(site, spec.webhook.secret_file, path, "webhook.secret_file")
        out["webhook"] = WebhookNotifier(spec.webhook.url, secret.strip(), spec.webhook.timeout)
    if spec.email is not None:
        e = spec.email
        password = (
            _read(site, e.password_file, path, "email.password_file").decode().strip() if e.password_file else None
        )
        mail_tls = _context(site, e.ca_file, path, "email.ca_file")
        out["email"] = EmailNotifier(e.host, e.port, e.sender, tuple(e.to), mail_tls, e.username, password)
    if spec.syslog is not None:
        s = spec.syslog
        tls = _context(site, s.ca_file, path, "syslog.ca_file") if s.ca_file else None
        out["syslog"] = SyslogNotifier(s.host, s.port, tls)
    return out


def _read(site: Path, relative: str, path: Path, key: str) -> bytes:
    try:
        return (site / relative).read_bytes()
    except OSError as exc:
        raise ConfigError(Problem(path, f"cannot read {site / relative}: {exc.strerror or exc}", key=key)) from exc


def _context(site: Path, ca_file: str | None, path: Path, key: str) -> ssl.SSLContext:
    try:
        return ssl.create_default_context(cafile=str(site / ca_file) if ca_file else None)
    except (OSError, ssl.SSLError) as exc:
        raise ConfigError(Problem(path, f"not a usable CA file: {exc}", key=key)) from exc
