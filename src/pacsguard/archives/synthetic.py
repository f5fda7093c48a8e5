"""Synthetic, valid DICOM instances for the demo, the tests and the benchmarks (pydicom +
numpy), as Part-10 bytes.

``make_study(...)`` returns a ``SyntheticStudy`` whose ``instances`` are the file bytes;
pixel data size is set by ``rows``/``columns`` so a test can make a study as big as it
needs. Nothing here is real patient data.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import date

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import (
    PYDICOM_IMPLEMENTATION_UID,
    UID,
    ComputedRadiographyImageStorage,
    CTImageStorage,
    ExplicitVRLittleEndian,
    MRImageStorage,
    UltrasoundImageStorage,
    generate_uid,
)

__all__ = ["SOP_CLASS", "SyntheticStudy", "make_instance", "make_study"]

SOP_CLASS = {
    "CT": CTImageStorage,
    "MR": MRImageStorage,
    "CR": ComputedRadiographyImageStorage,
    "US": UltrasoundImageStorage,
}


@dataclass
class SyntheticStudy:
    """A study's identifiers and its instances (Part-10 bytes, in series order)."""

    patient_id: str
    patient_name: str
    study_uid: str
    study_date: date
    modality: str
    accession: str
    description: str
    series_uids: list[str] = field(default_factory=list)
    instances: list[bytes] = field(default_factory=list)
    sop_uids: list[str] = field(default_factory=list)

    @property
    def size(self) -> int:
        return sum(len(i) for i in self.instances)


def make_instance(
    *,
    patient_id: str,
    patient_name: str,
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    study_date: date,
    modality: str = "CT",
    accession: str = "",
    description: str = "",
    number: int = 1,
    rows: int = 16,
    columns: int = 16,
) -> bytes:
    """One instance with ``rows`` x ``columns`` 16-bit pixels, as Part-10 bytes."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = SOP_CLASS[modality]
    meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = SOP_CLASS[modality]
    ds.SOPInstanceUID = sop_uid
    ds.StudyInstanceUID = study_uid
    ds.SeriesInstanceUID = series_uid
    ds.PatientID = patient_id
    ds.PatientName = patient_name
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = study_date.strftime("%Y%m%d")
    ds.StudyTime = "101500"
    ds.StudyID = "1"
    ds.AccessionNumber = accession
    ds.StudyDescription = description
    ds.ReferringPhysicianName = ""
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.InstanceNumber = number
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = rows
    ds.Columns = columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    pixels = (np.arange(rows * columns, dtype=np.uint16) * (number + 1) % 4096).reshape(rows, columns)
    ds.PixelData = pixels.tobytes()
    buffer = io.BytesIO()
    ds.save_as(buffer, enforce_file_format=True)
    return buffer.getvalue()


def make_study(
    *,
    patient_id: str = "PAT-1",
    patient_name: str = "Fischer^Maria",
    study_date: date = date(2024, 3, 15),
    modality: str = "CT",
    accession: str = "ACC-1",
    description: str = "CT chest",
    series: int = 1,
    instances_per_series: int = 2,
    rows: int = 16,
    columns: int = 16,
    study_uid: str | None = None,
) -> SyntheticStudy:
    """A study of ``series`` x ``instances_per_series`` instances with fresh UIDs (the
    study's own UID too, unless ``study_uid`` is given)."""
    uid = study_uid or generate_uid()
    study = SyntheticStudy(patient_id, patient_name, uid, study_date, modality, accession, description)
    for _ in range(series):
        series_uid = generate_uid()
        study.series_uids.append(series_uid)
        for number in range(1, instances_per_series + 1):
            sop_uid = generate_uid()
            study.sop_uids.append(sop_uid)
            study.instances.append(
                make_instance(
                    patient_id=patient_id,
                    patient_name=patient_name,
                    study_uid=study.study_uid,
                    series_uid=series_uid,
                    sop_uid=sop_uid,
                    study_date=study_date,
                    modality=modality,
                    accession=accession,
                    description=description,
                    number=number,
                    rows=rows,
                    columns=columns,
                )
            )
    return study
