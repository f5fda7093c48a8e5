"""The secrets of a share link: its token, its one-time code, the recipient's cookie and
the form token, each checked in constant time.

- The token is 256 random bits, URL-safe base64 (43 characters); only its SHA-256 is
  stored, and a presented token is looked up by that hash.
- Each link has its own random ``secret`` (stored with it). It keys the HMAC of the
  e-mailed code and signs the recipient's cookie and form tokens, so a revoked or
  deleted link takes its cookies with it and cookies of one link never open another.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

__all__ = [
    "CODE_DIGITS",
    "Pass",
    "code_hash",
    "form_token",
    "hash_token",
    "is_token",
    "new_code",
    "new_secret",
    "new_share_id",
    "new_token",
    "read_pass",
    "valid_form_token",
    "write_pass",
]

CODE_DIGITS = 6
_TOKEN = re.compile(r"^[A-Za-z0-9_-]{43}$")
_FORM_TTL = timedelta(hours=1)


def new_token() -> str:
    """A fresh link token: 256 random bits, URL-safe."""
    return secrets.token_urlsafe(32)


def is_token(text: str) -> bool:
    """True when ``text`` has the shape of a token (checked before any database work)."""
    return bool(_TOKEN.match(text))


def hash_token(token: str) -> str:
    """The stored form of a token: its SHA-256, hex."""
    return hashlib.sha256(token.encode("ascii", "replace")).hexdigest()


def new_share_id() -> str:
    """A link's public id (not a secret: it names the link in lists and audit events)."""
    return "shr_" + secrets.token_hex(8)


def new_secret() -> str:
    """A link's own HMAC key, hex."""
    return secrets.token_hex(32)


def new_code() -> str:
    """A one-time code of six decimal digits."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def _mac(secret: str, message: str) -> str:
    return hmac.new(bytes.fromhex(secret), message.encode(), hashlib.sha256).hexdigest()


def code_hash(secret: str, code: str) -> str:
    """The stored form of a one-time code (HMAC-SHA256 under the link's secret)."""
    return _mac(secret, "code:" + code.strip())


@dataclass(frozen=True, slots=True)
class Pass:
    """What the recipient's cookie proves: the link, how far its gates were passed
    (``passcode`` or ``open``), and until when."""

    share_id: str
    stage: str
    until: datetime


def write_pass(secret: str, grant: Pass) -> str:
    """The cookie value for ``grant``, signed with the link's secret."""
    body = f"{grant.share_id}.{grant.stage}.{int(grant.until.timestamp())}"
    return f"{body}.{_mac(secret, 'pass:' + body)}"


def read_pass(secret: str, share_id: str, value: str | None, now: datetime) -> Pass | None:
    """The cookie's ``Pass`` when it is this link's, correctly signed and not expired."""
    if not value or len(value) > 256:
        return None
    body, _, mac = value.rpartition(".")
    parts = body.split(".")
    if len(parts) != 3 or not hmac.compare_digest(mac, _mac(secret, "pass:" + body)):
        return None
    sid, stage, until = parts
    if sid != share_id or not until.isdigit() or int(until) <= now.timestamp():
        return None
    return Pass(sid, stage, datetime.fromtimestamp(int(until), tz=now.tzinfo))


def form_token(secret: str, now: datetime) -> str:
    """A token for the link's forms: it proves the form came from this link's page."""
    stamp = str(int(now.timestamp()))
    return f"{stamp}.{_mac(secret, 'form:' + stamp)}"


def valid_form_token(secret: str, value: str | None, now: datetime) -> bool:
    """True for a form token of this link issued within the last hour."""
    if not value or len(value) > 128:
        return False
    stamp, _, mac = value.partition(".")
    if not stamp.isdigit() or not hmac.compare_digest(mac, _mac(secret, "form:" + stamp)):
        return False
    age = now.timestamp() - int(stamp)
    return 0 <= age <= _FORM_TTL.total_seconds()
