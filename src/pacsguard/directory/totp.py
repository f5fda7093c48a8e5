"""Time-based one-time passwords (RFC 6238) with pyotp: enrolment, ±1 step tolerance,
and replay refusal (a code of a time step at or before the last one used is refused)."""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from datetime import datetime

import pyotp

from pacsguard.directory.model import TotpEnrolment

__all__ = ["TotpCheck", "check_code", "new_enrolment"]

TOLERANCE_STEPS = 1


def new_enrolment(principal_id: str, issuer: str) -> TotpEnrolment:
    """A fresh random secret and its ``otpauth://`` provisioning URI."""
    secret = pyotp.random_base32()
    uri = pyotp.TOTP(secret).provisioning_uri(name=principal_id, issuer_name=issuer)
    return TotpEnrolment(secret, uri)


@dataclass(frozen=True, slots=True)
class TotpCheck:
    """The outcome of checking a code: ``step`` is the matched time step, or ``reason``."""

    step: int | None
    reason: str | None = None


def check_code(secret: str, code: str, now: datetime, last_step: int | None) -> TotpCheck:
    """Check ``code`` at ``now`` within ±1 step; a step not after ``last_step`` is a replay."""
    totp = pyotp.TOTP(secret)
    code = code.strip().replace(" ", "")
    current = totp.timecode(now)
    matched = None
    for step in range(current - TOLERANCE_STEPS, current + TOLERANCE_STEPS + 1):
        if hmac.compare_digest(totp.generate_otp(step), code):
            matched = step
    if matched is None:
        return TotpCheck(None, "bad_code")
    if last_step is not None and matched <= last_step:
        return TotpCheck(None, "replay")
    return TotpCheck(matched)
