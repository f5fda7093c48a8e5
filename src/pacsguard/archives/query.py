"""``QidoQuery``: a QIDO-RS search, validated and rebuilt, never forwarded raw.

DICOM PS3.18 §8.3.4 defines the query parameters. Upstream archives are lenient in
ways a gateway cannot afford (see ORTHANC_NOTES): unknown keys are ignored (a misspelt
filter returns everything), a repeated key silently takes the last value, percent-encoded
wildcards match nothing and ``limit=-1`` is a server error. So a query is parsed into
this value type, which refuses unknown and repeated keys, checks UID and date syntax,
and is then written out again by ``to_query_string`` in the raw form archives understand
(``^``, ``*`` and ``?`` unencoded).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, replace
from datetime import date
from enum import StrEnum
from urllib.parse import parse_qsl, quote

from pydicom.datadict import keyword_for_tag, tag_for_keyword

from pacsguard.errors import ArchiveQueryError

__all__ = ["DateRange", "Level", "QidoQuery", "is_valid_uid"]

_UID = re.compile(r"(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*")
_MODALITY = re.compile(r"[A-Z0-9_]{1,16}")
_DATE = re.compile(r"[0-9]{8}")
# Values may hold letters, digits, spaces, the PN separators and the two wildcards; no
# character that could end a value or start another parameter once re-sent.
_FORBIDDEN = re.compile(r"[\x00-\x1f\x7f\\,&=#%+;\"<>`{}|\[\]]")
_MAX_VALUE = 64


class Level(StrEnum):
    """The QIDO level a query runs at (PS3.18 §10.6)."""

    STUDY = "study"
    SERIES = "series"
    INSTANCE = "instance"


# key -> levels it may be used at
_KEYS: dict[str, frozenset[Level]] = {
    "PatientID": frozenset(Level),
    "PatientName": frozenset(Level),
    "StudyDate": frozenset(Level),
    "ModalitiesInStudy": frozenset({Level.STUDY}),
    "AccessionNumber": frozenset(Level),
    "StudyInstanceUID": frozenset(Level),
    "Modality": frozenset({Level.SERIES, Level.INSTANCE}),
    "SeriesInstanceUID": frozenset({Level.SERIES, Level.INSTANCE}),
    "SOPInstanceUID": frozenset({Level.INSTANCE}),
    "limit": frozenset(Level),
    "offset": frozenset(Level),
    "includefield": frozenset(Level),
    "fuzzymatching": frozenset(Level),
}


def is_valid_uid(value: str) -> bool:
    """A DICOM UID (PS3.5 §9.1): dotted numbers, no leading zeros, at most 64 characters."""
    return 0 < len(value) <= 64 and _UID.fullmatch(value) is not None


@dataclass(frozen=True, slots=True)
class DateRange:
    """A DA range match (PS3.4 §C.2.2.2.5): either end may be open, not both."""

    start: date | None = None
    end: date | None = None

    @classmethod
    def parse(cls, text: str, key: str = "StudyDate") -> DateRange:
        """``YYYYMMDD``, ``A-B``, ``A-`` or ``-B``; raises ``ArchiveQueryError``."""
        lo, dash, hi = text.partition("-")
        if not dash:
            hi = lo
        start, end = _parse_date(lo, key), _parse_date(hi, key)
        if start is None and end is None:
            raise ArchiveQueryError(key, "a date range needs at least one end (YYYYMMDD-YYYYMMDD)")
        if start is not None and end is not None and start > end:
            raise ArchiveQueryError(key, f"the range starts after it ends: {text!r}")
        return cls(start, end)

    def contains(self, day: date | None) -> bool:
        if day is None:
            return False
        return (self.start is None or day >= self.start) and (self.end is None or day <= self.end)

    def to_dicom(self) -> str:
        lo = self.start.strftime("%Y%m%d") if self.start else ""
        hi = self.end.strftime("%Y%m%d") if self.end else ""
        return lo if lo == hi else f"{lo}-{hi}"


def _parse_date(text: str, key: str) -> date | None:
    if text == "":
        return None
    if not _DATE.fullmatch(text):
        raise ArchiveQueryError(key, f"{text!r} is not a date; use YYYYMMDD or YYYYMMDD-YYYYMMDD")
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        raise ArchiveQueryError(key, f"{text!r} is not a calendar date") from None


@dataclass(frozen=True, slots=True)
class QidoQuery:
    """A validated QIDO-RS search. Build one with ``parse`` (from a client's query string)
    or directly; ``to_query_string`` gives what is sent upstream. Raises ``ArchiveQueryError``.
    """

    level: Level = Level.STUDY
    patient_id: str | None = None
    patient_name: str | None = None
    study_date: DateRange | None = None
    modalities: tuple[str, ...] = ()
    accession_number: str | None = None
    study_uids: tuple[str, ...] = ()
    modality: str | None = None
    series_uids: tuple[str, ...] = ()
    sop_uids: tuple[str, ...] = ()
    limit: int | None = None
    offset: int = 0
    includefield: tuple[str, ...] = ()
    fuzzymatching: bool = False

    def __post_init__(self) -> None:
        for key, value in (
            ("PatientID", self.patient_id),
            ("PatientName", self.patient_name),
            ("AccessionNumber", self.accession_number),
        ):
            if value is not None:
                _check_text(key, value)
        for key, uids in (
            ("StudyInstanceUID", self.study_uids),
            ("SeriesInstanceUID", self.series_uids),
            ("SOPInstanceUID", self.sop_uids),
        ):
            for uid in uids:
                if not is_valid_uid(uid):
                    raise ArchiveQueryError(key, f"{uid!r} is not a valid DICOM UID")
        for code in (*self.modalities, *((self.modality,) if self.modality else ())):
            if not _MODALITY.fullmatch(code):
                raise ArchiveQueryError("Modality", f"{code!r} is not a modality code such as CT or MR")
        if self.limit is not None and self.limit < 1:
            raise ArchiveQueryError("limit", "must be a positive number of results")
        if self.offset < 0:
            raise ArchiveQueryError("offset", "must not be negative")
        for name in self.includefield:
            _check_field(name)
        by_level: tuple[tuple[str, object], ...] = (
            ("Modality", self.modality),
            ("SeriesInstanceUID", self.series_uids),
            ("SOPInstanceUID", self.sop_uids),
            ("ModalitiesInStudy", self.modalities),
        )
        for name, given in by_level:
            if given and self.level not in _KEYS[name]:
                raise ArchiveQueryError(name, f"not a search key at {self.level} level")

    @classmethod
    def parse(cls, raw: str | Iterable[tuple[str, str]], level: Level = Level.STUDY) -> QidoQuery:
        """Parse a client's query string (percent-encoded) or its decoded pairs.

        Refuses unknown keys, keys not valid at ``level``, repeated keys (``includefield``
        may repeat: its values are merged), bad UIDs, dates, numbers and wildcards.
        Raises ``ArchiveQueryError`` naming the key.
        """
        pairs = _decode(raw) if isinstance(raw, str) else list(raw)
        seen: dict[str, str] = {}
        fields: list[str] = []
        for raw_key, value in pairs:
            key = _canonical_key(raw_key)
            if level not in _KEYS[key]:
                hint = " (use ModalitiesInStudy at study level)" if key == "Modality" else ""
                raise ArchiveQueryError(raw_key, f"not a search key at {level} level{hint}")
            if key == "includefield":
                fields.extend(_field_keyword(v.strip()) for v in value.split(","))
                continue
            if key in seen:
                raise ArchiveQueryError(raw_key, "given more than once; give each search key once")
            seen[key] = value
        return cls._from_values(level, seen, tuple(dict.fromkeys(fields)))

    @classmethod
    def _from_values(cls, level: Level, values: dict[str, str], fields: tuple[str, ...]) -> QidoQuery:
        limit = _int(values, "limit")
        return cls(
            level=level,
            patient_id=values.get("PatientID"),
            patient_name=values.get("PatientName"),
            study_date=DateRange.parse(values["StudyDate"]) if "StudyDate" in values else None,
            modalities=_list(values, "ModalitiesInStudy"),
            accession_number=values.get("AccessionNumber"),
            study_uids=_list(values, "StudyInstanceUID"),
            modality=values.get("Modality"),
            series_uids=_list(values, "SeriesInstanceUID"),
            sop_uids=_list(values, "SOPInstanceUID"),
            limit=None if limit == 0 else limit,  # 0 means "no limit" (PS3.18 leaves it open)
            offset=_int(values, "offset") or 0,
            includefield=("all",) if "all" in fields else fields,
            fuzzymatching=_bool(values, "fuzzymatching"),
        )

    def to_query_string(self) -> str:
        """The upstream query, rebuilt: fixed key order, each key once, wildcards raw.

        A space cannot travel raw in a URL and Orthanc does not decode ``%20``, so a space
        in a value is sent as the one-character wildcard ``?``.
        """
        pairs = [
            ("PatientID", _spaced(self.patient_id)),
            ("PatientName", _spaced(self.patient_name)),
            ("StudyDate", self.study_date.to_dicom() if self.study_date else None),
            ("ModalitiesInStudy", ",".join(self.modalities) or None),
            ("AccessionNumber", _spaced(self.accession_number)),
            ("StudyInstanceUID", ",".join(self.study_uids) or None),
            ("Modality", self.modality),
            ("SeriesInstanceUID", ",".join(self.series_uids) or None),
            ("SOPInstanceUID", ",".join(self.sop_uids) or None),
            ("limit", str(self.limit) if self.limit is not None else None),
            ("offset", str(self.offset) if self.offset else None),
            ("includefield", ",".join(self.includefield) or None),
            ("fuzzymatching", "true" if self.fuzzymatching else None),
        ]
        return "&".join(f"{k}={quote(v, safe='^*?.,-_')}" for k, v in pairs if v is not None)

    def with_page(self, limit: int | None, offset: int) -> QidoQuery:
        """The same filters with another page (for paging and for post-filtering)."""
        return replace(self, limit=limit, offset=offset)

    def filters_only(self) -> QidoQuery:
        """The same filters without paging or includefield."""
        return replace(self, limit=None, offset=0, includefield=())


def _spaced(value: str | None) -> str | None:
    return value.replace(" ", "?") if value is not None else None


def _decode(raw: str) -> list[tuple[str, str]]:
    try:
        return parse_qsl(raw.lstrip("?"), keep_blank_values=True, strict_parsing=bool(raw.strip("?")))
    except ValueError as exc:
        raise ArchiveQueryError("query", f"not a valid query string: {exc}") from None


def _canonical_key(key: str) -> str:
    if key in _KEYS:
        return key
    if re.fullmatch(r"[0-9A-Fa-f]{8}", key):
        keyword = keyword_for_tag(int(key, 16))
        if keyword in _KEYS:
            return keyword
    raise ArchiveQueryError(key, f"not a supported search key; use one of {', '.join(sorted(_KEYS))}")


def _check_text(key: str, value: str) -> None:
    if value == "" or len(value) > _MAX_VALUE:
        raise ArchiveQueryError(key, f"must be 1 to {_MAX_VALUE} characters")
    bad = _FORBIDDEN.search(value)
    if bad:
        raise ArchiveQueryError(key, f"character {bad.group()!r} is not allowed in a search value")


def _field_keyword(name: str) -> str:
    """An includefield value as a keyword: ``00100010`` becomes ``PatientName``."""
    if re.fullmatch(r"[0-9A-Fa-f]{8}", name):
        return keyword_for_tag(int(name, 16)) or name
    return name


def _check_field(name: str) -> None:
    if name != "all" and tag_for_keyword(name) is None:
        raise ArchiveQueryError("includefield", f"{name!r} is not a DICOM attribute keyword")


def _list(values: dict[str, str], key: str) -> tuple[str, ...]:
    if key not in values:
        return ()
    items = tuple(v.strip() for v in values[key].split(","))
    if "" in items:
        raise ArchiveQueryError(key, "empty item in a comma-separated list")
    return items


def _int(values: dict[str, str], key: str) -> int | None:
    if key not in values:
        return None
    text = values[key]
    if not re.fullmatch(r"-?[0-9]{1,9}", text):
        raise ArchiveQueryError(key, f"{text!r} is not a whole number")
    number = int(text)
    if number < 0:
        raise ArchiveQueryError(key, "must not be negative")
    return number


def _bool(values: dict[str, str], key: str) -> bool:
    text = values.get(key, "false").lower()
    if text not in ("true", "false"):
        raise ArchiveQueryError(key, "must be true or false")
    return text == "true"
