"""RFC 5425 octet-counting frames (``MSG-LEN SP SYSLOG-MSG``) cut from a TCP byte stream.

``Framer`` is pure: feed it the bytes as they arrive, get back whole frames and the
problems found. A frame longer than ``max_bytes`` is skipped (its first ``keep_bytes``
kept for the quarantine) and the stream goes on; a header that is not digits and a
space, a length beyond ``skip_limit``, or a stream that ends inside a frame means the
length lied: the rest of the stream cannot be trusted (``Framer.broken``).
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Bad", "Frame", "Framer"]

_MAX_DIGITS = 10  # RFC 5425 MSG-LEN is NONZERO-DIGIT *DIGIT; 10 digits is far beyond any cap


@dataclass(frozen=True, slots=True)
class Frame:
    """One whole syslog message."""

    data: bytes


@dataclass(frozen=True, slots=True)
class Bad:
    """Input the framing refused: ``reason`` (``oversized``, ``bad-frame-length``,
    ``truncated-frame``), its first bytes, and the size the frame claimed or had."""

    reason: str
    message: str
    raw: bytes
    size: int
    fatal: bool  # the connection must close: the stream is out of step


class Framer:
    """Cuts frames from a stream; once ``broken``, it takes nothing more."""

    def __init__(self, max_bytes: int, keep_bytes: int = 64 * 1024, skip_limit: int = 32 << 20) -> None:
        self.max_bytes = max_bytes
        self.keep_bytes = keep_bytes
        self.skip_limit = max(skip_limit, max_bytes)
        self.broken = False
        self._buf = bytearray()
        self._skip_left = 0  # bytes of an oversized frame still to discard
        self._skip_size = 0
        self._skip_kept = bytearray()

    def feed(self, data: bytes) -> list[Frame | Bad]:
        """The frames (and problems) that ``data`` completes."""
        if self.broken:
            return []
        self._buf += data
        out: list[Frame | Bad] = []
        while not self.broken:
            if self._skip_left:
                if not self._skip():
                    break
                out.append(self._oversized())
                continue
            item = self._next()
            if item is None:
                break
            out.append(item)
        return out

    def end(self) -> Bad | None:
        """The stream ended: a problem if it ended inside a frame."""
        if self.broken:
            return None
        if self._skip_left:
            self.broken = True
            return Bad("truncated-frame", "the stream ended inside an oversized frame: its length lied",
                       bytes(self._skip_kept), self._skip_size, True)  # fmt: skip
        if self._buf:
            self.broken = True
            raw = bytes(self._buf[: self.keep_bytes])
            return Bad("truncated-frame", "the stream ended inside a frame: its length lied", raw, len(self._buf), True)
        return None

    def _fail(self, reason: str, message: str) -> Bad:
        self.broken = True
        raw = bytes(self._buf[: self.keep_bytes])
        size = len(self._buf)
        self._buf.clear()
        return Bad(reason, message, raw, size, True)

    def _header(self) -> tuple[int, int] | Bad | None:
        """(frame length, where the message starts), a problem, or ``None`` (need more)."""
        buf = self._buf
        space = buf.find(b" ", 0, _MAX_DIGITS + 1)
        if space < 0:
            if len(buf) > _MAX_DIGITS or (buf and not buf.isdigit()):
                return self._fail("bad-frame-length", "no octet count before the message (RFC 5425 framing)")
            return None
        digits = bytes(buf[:space])
        if not digits.isdigit() or digits.startswith(b"0"):
            return self._fail("bad-frame-length", f"not an octet count: {digits[:16]!r}")
        length = int(digits)
        if length > self.skip_limit:
            return self._fail("bad-frame-length", f"frame length {length} is beyond any acceptable size")
        return length, space + 1

    def _next(self) -> Frame | Bad | None:
        header = self._header()
        if not isinstance(header, tuple):
            return header
        length, start = header
        buf = self._buf
        if length > self.max_bytes:
            del buf[:start]
            self._skip_left, self._skip_size, self._skip_kept = length, length, bytearray()
            return None if not self._skip() else self._oversized()
        if len(buf) - start < length:
            return None
        frame = bytes(buf[start : start + length])
        del buf[: start + length]
        return Frame(frame)

    def _skip(self) -> bool:
        """Discard buffered bytes of the oversized frame; ``True`` once all are gone."""
        take = min(self._skip_left, len(self._buf))
        room = self.keep_bytes - len(self._skip_kept)
        if room > 0:
            self._skip_kept += self._buf[: min(room, take)]
        del self._buf[:take]
        self._skip_left -= take
        return self._skip_left == 0

    def _oversized(self) -> Bad:
        message = f"message of {self._skip_size} bytes is over the limit of {self.max_bytes}"
        return Bad("oversized", message, bytes(self._skip_kept), self._skip_size, False)
