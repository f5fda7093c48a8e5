"""What the recipient receives: a PNG preview per study and a ZIP download, each audited
before it leaves."""

from __future__ import annotations

import io
import zipfile

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from pacsguard.gateway.shares import render_png
from pacsguard.gateway.shares.preview import middle_instance
from tests.unit.gateway.shares.conftest import Shares, path_of


def test_the_preview_is_a_png_of_the_study_size(shares: Shares) -> None:
    w = shares.world
    created = shares.create()
    shares.visit(path_of(created), fresh=True)
    response = shares.visit(f"{path_of(created)}/preview/{w.studies['N1'].study_uid}.png")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/png"
    image = Image.open(io.BytesIO(response.content))
    first = dcmread(io.BytesIO(w.studies["N1"].instances[0]))
    assert image.format == "PNG"
    assert image.size == (first.Columns, first.Rows)
    preview = [e for e in w.events("share.opened") if e.detail.get("what") == "preview"]
    assert [e.objects.study_uid for e in preview] == [w.studies["N1"].study_uid]


def test_the_download_is_a_zip_of_the_shared_studies_with_one_read_event_each(shares: Shares) -> None:
    w = shares.world
    study = w.studies["N1"]
    created = shares.create()
    shares.visit(path_of(created), fresh=True)
    response = shares.visit(f"{path_of(created)}/download")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(response.content)) as archive:
        stored = [archive.read(name) for name in archive.namelist() if name.endswith(".dcm")]
    assert sorted(stored) == sorted(study.instances)
    (read,) = w.events("study.read")
    assert read.objects.share_id == created["id"]
    assert read.objects.study_uid == study.study_uid
    assert read.objects.count == len(study.instances)
    assert read.detail["download"] is True
    downloads = [e for e in w.events("share.opened") if e.detail.get("what") == "download"]
    assert len(downloads) == 1
    assert read.seq is not None
    assert downloads[0].seq is not None
    assert downloads[0].seq < read.seq


def test_a_download_of_a_study_not_shared_is_refused(shares: Shares) -> None:
    w = shares.world
    created = shares.create()
    shares.visit(path_of(created), fresh=True)
    other = shares.visit(f"{path_of(created)}/download", params={"study": w.studies["N2"].study_uid})
    assert other.status_code == 404
    assert "cannot be opened" in other.text
    assert w.events("study.read") == []
    own = shares.visit(f"{path_of(created)}/download", params={"study": w.studies["N1"].study_uid})
    assert own.status_code == 200


def test_a_download_needs_an_open_session(shares: Shares) -> None:
    created = shares.create()
    assert shares.visit(f"{path_of(created)}/download", fresh=True).status_code == 404


def _image(pixels: np.ndarray, **attributes: object) -> Dataset:
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.Rows, ds.Columns = pixels.shape
    ds.SamplesPerPixel = 1
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 0
    ds.PhotometricInterpretation = "MONOCHROME2"
    for key, value in attributes.items():
        setattr(ds, key, value)
    ds.PixelData = pixels.astype(np.uint16).tobytes()
    return ds


def _grey(png: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(png)))


def test_rendering_stretches_min_max_and_inverts_monochrome1() -> None:
    ramp = np.array([[100, 200], [300, 400]])
    assert _grey(render_png(_image(ramp))).tolist() == [[0, 85], [170, 255]]
    assert _grey(render_png(_image(ramp, PhotometricInterpretation="MONOCHROME1"))).tolist() == [[255, 170], [85, 0]]


def test_rendering_uses_the_files_window() -> None:
    ramp = np.array([[0, 100], [150, 1000]])
    out = _grey(render_png(_image(ramp, WindowCenter=100, WindowWidth=100)))
    assert out.tolist() == [[0, 128], [255, 255]]


def test_rendering_shrinks_large_images() -> None:
    big = np.arange(600 * 300).reshape(600, 300) % 4096
    assert Image.open(io.BytesIO(render_png(_image(big)))).size == (256, 512)


def test_the_middle_image_of_the_middle_series_is_chosen() -> None:
    def item(series: str, number: int, sop: str) -> dict[str, object]:
        return {"0020000E": {"Value": [series]}, "00200011": {"Value": [int(series[-1])]},
                "00200013": {"Value": [number]}, "00080018": {"Value": [sop]}, "00280010": {"Value": [2]}}  # fmt: skip

    items = [item(f"1.{s}", n, f"1.{s}.{n}") for s in (1, 2, 3) for n in (3, 1, 2)]
    assert middle_instance(items) == ("1.2", "1.2.2")
    assert middle_instance([]) is None
