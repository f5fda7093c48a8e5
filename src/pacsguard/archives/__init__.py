"""Archives behind pacsguard: the Archive protocol, DICOMweb adapter, embedded store,
and the study catalogue (study → zone, patient, sensitivity)."""

from pacsguard.archives.base import (
    DICOM_ACCEPT,
    Archive,
    DicomJson,
    InstanceInfo,
    Retrieved,
    StoreFailure,
    StoreResult,
)
from pacsguard.archives.dicomweb import DicomWebArchive
from pacsguard.archives.embedded import EmbeddedArchive
from pacsguard.archives.query import DateRange, Level, QidoQuery, is_valid_uid

__all__ = [
    "DICOM_ACCEPT",
    "Archive",
    "DateRange",
    "DicomJson",
    "DicomWebArchive",
    "EmbeddedArchive",
    "InstanceInfo",
    "Level",
    "QidoQuery",
    "Retrieved",
    "StoreFailure",
    "StoreResult",
    "is_valid_uid",
]
