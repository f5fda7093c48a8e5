"""The DICOMweb URL space (PS3.18 §10), matched strictly on the decoded path.

There is one spelling of each resource: lower-case literals, no empty, ``.`` or ``..``
segment (one trailing slash is tolerated). Anything else names nothing and gets the same
404 as a study that does not exist, so odd URL forms neither reach an archive nor reveal
anything. UIDs are checked here: a malformed one is a 400, whatever the study's state.
"""

from __future__ import annotations

from dataclasses import dataclass

from pacsguard.archives import Level, is_valid_uid
from pacsguard.errors import BadRequest

__all__ = ["Target", "check", "match", "route"]

# (method, pattern) -> kind; {S} study, {R} series, {I} instance, {X} a last free segment
_ROUTES: dict[tuple[str, str], str] = {
    ("GET", "studies"): "qido",
    ("GET", "series"): "qido",
    ("GET", "instances"): "qido",
    ("GET", "studies/{S}/series"): "qido",
    ("GET", "studies/{S}/instances"): "qido",
    ("GET", "studies/{S}/series/{R}/instances"): "qido",
    ("GET", "studies/{S}"): "retrieve",
    ("GET", "studies/{S}/series/{R}"): "retrieve",
    ("GET", "studies/{S}/series/{R}/instances/{I}"): "retrieve",
    ("GET", "studies/{S}/metadata"): "metadata",
    ("GET", "studies/{S}/series/{R}/metadata"): "metadata",
    ("GET", "studies/{S}/series/{R}/instances/{I}/metadata"): "metadata",
    ("GET", "studies/{S}/series/{R}/instances/{I}/frames/{X}"): "frames",
    ("GET", "studies/{S}/series/{R}/instances/{I}/bulk/{X}"): "bulk",
    ("POST", "studies"): "stow",
    ("POST", "studies/{S}"): "stow",
    ("DELETE", "studies/{S}"): "delete",
}
_LEVEL = {"studies": Level.STUDY, "series": Level.SERIES, "instances": Level.INSTANCE}


@dataclass(frozen=True, slots=True)
class Target:
    """What a request path names: the route kind, its UIDs, the QIDO level, a last segment."""

    kind: str
    study: str | None = None
    series: str | None = None
    instance: str | None = None
    level: Level = Level.STUDY
    extra: str | None = None
    head: bool = False  # a HEAD request: decided and answered like GET, without the body

    @property
    def event_type(self) -> str:
        """The audit event type of this kind of request."""
        return {"qido": "study.query", "stow": "study.store", "delete": "study.delete"}.get(self.kind, "study.read")


def match(method: str, path: str) -> Target | None:
    """The target of ``method path`` (path below the DICOMweb root), or ``None``. HEAD
    matches what GET matches (``Target.head``).

    Raises ``BadRequest`` for a malformed UID in a path that otherwise matches.
    """
    target = route(method, path)
    if target is not None:
        check(target)
    return target


def route(method: str, path: str) -> Target | None:
    """What ``method path`` names, its UIDs not yet checked (``check``), or ``None``."""
    head = method == "HEAD"
    method = "GET" if head else method
    if path.endswith("/") and len(path) > 1:
        path = path[:-1]
    if not path.startswith("/"):
        return None
    segments = path[1:].split("/")
    if any(s in ("", ".", "..") for s in segments):
        return None
    for (verb, pattern), kind in _ROUTES.items():
        if verb == method:
            found = _bind(pattern.split("/"), segments)
            if found is not None:
                return _target(kind, found, segments, head)
    return None


def _bind(pattern: list[str], segments: list[str]) -> dict[str, str] | None:
    if len(pattern) != len(segments):
        return None
    bound: dict[str, str] = {}
    for want, got in zip(pattern, segments, strict=True):
        if want.startswith("{"):
            bound[want] = got
        elif want != got:
            return None
    return bound


def check(target: Target) -> None:
    """Raise ``BadRequest`` if a UID in the target's path is not a valid DICOM UID."""
    for key, uid in (("StudyInstanceUID", target.study), ("SeriesInstanceUID", target.series),
                     ("SOPInstanceUID", target.instance)):  # fmt: skip
        if uid is not None and not is_valid_uid(uid):
            raise BadRequest(f"{key} in the path is not a valid DICOM UID: {uid[:80]!r}")


def _target(kind: str, bound: dict[str, str], segments: list[str], head: bool) -> Target:
    level = _LEVEL.get(segments[-1], Level.STUDY) if kind == "qido" else Level.STUDY
    return Target(kind, bound.get("{S}"), bound.get("{R}"), bound.get("{I}"), level, bound.get("{X}"), head)
