"""Preview images for share recipients: the middle slice of the middle series of a study,
rendered to PNG with pydicom, numpy and Pillow.

Grey-scale images go through the modality LUT (rescale slope and intercept), then the
file's first window (centre/width, PS3.3 C.11.2.1.2, linear) or, without one, the
image's own minimum and maximum; MONOCHROME1 is inverted so that bone stays white.
Colour images are converted to RGB and stretched to 8 bits. The longer side is at most
``max_side`` pixels.
"""

from __future__ import annotations

import io
import warnings
from typing import Any

import numpy as np
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_modality_lut, convert_color_space

from pacsguard.archives import Archive, DicomJson
from pacsguard.archives.parts import split_related

__all__ = ["PreviewUnavailable", "middle_instance", "placeholder_png", "render_png", "study_preview"]

MAX_SIDE = 512


class PreviewUnavailable(Exception):
    """The study has no image pydicom can decode (no pixel data, an unsupported codec)."""


async def study_preview(archive: Archive, study_uid: str, *, max_side: int = MAX_SIDE) -> bytes:
    """The PNG preview of ``study_uid`` from ``archive``. Raises ``PreviewUnavailable``,
    or ``ArchiveError`` when the archive cannot answer."""
    found = middle_instance(await archive.metadata(study_uid))
    if found is None:
        raise PreviewUnavailable("the study has no image")
    series_uid, sop_uid = found
    retrieved = await archive.retrieve_instance(study_uid, series_uid, sop_uid)
    body = await retrieved.read()
    parts = split_related(body, retrieved.content_type) if "multipart" in retrieved.content_type else [({}, body)]
    if not parts:
        raise PreviewUnavailable("the archive returned no instance")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            dataset = dcmread(io.BytesIO(parts[0][1]))
    except Exception as exc:  # pydicom raises many types for broken input
        raise PreviewUnavailable(f"unreadable instance: {type(exc).__name__}") from None
    return render_png(dataset, max_side=max_side)


def middle_instance(instances: list[DicomJson]) -> tuple[str, str] | None:
    """(series UID, SOP instance UID) of the middle image of the middle series, ordered by
    series and instance number; ``None`` when no instance has pixel rows."""
    series: dict[str, list[tuple[int, str]]] = {}
    numbers: dict[str, int] = {}
    for item in instances:
        uid, sop = _text(item, "0020000E"), _text(item, "00080018")
        if not uid or not sop or not _text(item, "00280010"):
            continue
        numbers[uid] = _number(item, "00200011")
        series.setdefault(uid, []).append((_number(item, "00200013"), sop))
    if not series:
        return None
    ordered = sorted(series, key=lambda u: (numbers[u], u))
    chosen = ordered[len(ordered) // 2]
    images = sorted(series[chosen])
    return chosen, images[len(images) // 2][1]


def render_png(dataset: Dataset, *, max_side: int = MAX_SIDE) -> bytes:
    """One PNG of the dataset's (middle) frame. Raises ``PreviewUnavailable``."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pixels = np.asarray(dataset.pixel_array)
    except Exception as exc:  # no pixel data, or a codec pydicom has no handler for
        raise PreviewUnavailable(f"cannot decode the pixels: {type(exc).__name__}") from None
    frames = int(dataset.get("NumberOfFrames", 1) or 1)
    samples = int(dataset.get("SamplesPerPixel", 1) or 1)
    if frames > 1:
        pixels = pixels[frames // 2]
    if samples == 1:
        image = Image.fromarray(_grey(dataset, pixels), mode="L")
    else:
        image = Image.fromarray(_colour(dataset, pixels), mode="RGB")
    image.thumbnail((max_side, max_side))
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def placeholder_png(side: int = 64) -> bytes:
    """A plain grey square, shown where a study has no renderable image."""
    out = io.BytesIO()
    Image.new("L", (side, side), 64).save(out, format="PNG")
    return out.getvalue()


def _grey(dataset: Dataset, pixels: Any) -> Any:
    values = np.asarray(apply_modality_lut(pixels, dataset), dtype=np.float64)
    low, high = _window(dataset, values)
    scaled = np.clip((values - low) / (high - low), 0.0, 1.0) * 255.0
    if str(dataset.get("PhotometricInterpretation", "")).upper() == "MONOCHROME1":
        scaled = 255.0 - scaled
    return scaled.round().astype(np.uint8)


def _window(dataset: Dataset, values: Any) -> tuple[float, float]:
    centre, width = _first(dataset.get("WindowCenter")), _first(dataset.get("WindowWidth"))
    if centre is not None and width is not None and width >= 1:
        return centre - width / 2, centre + width / 2
    low, high = float(values.min()), float(values.max())
    return low, (high if high > low else low + 1.0)


def _colour(dataset: Dataset, pixels: Any) -> Any:
    photometric = str(dataset.get("PhotometricInterpretation", "RGB")).upper()
    if photometric.startswith("YBR"):
        pixels = convert_color_space(pixels, photometric, "RGB")
    values = np.asarray(pixels, dtype=np.float64)
    low, high = float(values.min()), float(values.max())
    return (np.clip((values - low) / ((high - low) or 1.0), 0.0, 1.0) * 255.0).round().astype(np.uint8)


def _first(value: Any) -> float | None:
    if isinstance(value, MultiValue | list | tuple):
        value = value[0] if len(value) else None
    if value is None:
        return None
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _text(item: DicomJson, tag: str) -> str:
    element = item.get(tag)
    values = element.get("Value", []) if isinstance(element, dict) else []
    return str(values[0]) if values else ""


def _number(item: DicomJson, tag: str) -> int:
    text = _text(item, tag)
    try:
        return int(float(text))
    except ValueError:
        return 0
