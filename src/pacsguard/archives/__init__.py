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
from pacsguard.archives.catalogue import (
    CatalogueEntry,
    SensitivityRule,
    StudyCatalogue,
    ZoneRules,
    load_sensitivity_rules,
)
from pacsguard.archives.dicomweb import DicomWebArchive
from pacsguard.archives.embedded import EmbeddedArchive
from pacsguard.archives.query import DateRange, Level, QidoQuery, is_valid_uid
from pacsguard.archives.sealing import load_site_key
from pacsguard.archives.sync import SyncReport, sync

__all__ = [
    "DICOM_ACCEPT",
    "Archive",
    "CatalogueEntry",
    "DateRange",
    "DicomJson",
    "DicomWebArchive",
    "EmbeddedArchive",
    "InstanceInfo",
    "Level",
    "QidoQuery",
    "Retrieved",
    "SensitivityRule",
    "StoreFailure",
    "StoreResult",
    "StudyCatalogue",
    "SyncReport",
    "ZoneRules",
    "is_valid_uid",
    "load_sensitivity_rules",
    "load_site_key",
    "sync",
]
