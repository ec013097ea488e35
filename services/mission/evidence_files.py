"""What an evidence file really is, and an image's facts before its metadata is removed.

The type comes from the bytes, never from the client's header: JPEG, PNG, HEIC, PDF, MP4 and
QuickTime are accepted, anything else is refused (a zip renamed `.jpg` is a zip). Images are
opened with Pillow (HEIC through pillow-heif); a declared size above `MAX_PIXELS` is refused
from the header, before any pixel is decoded (decompression bombs). Their EXIF GPS position and
capture time are read, to be kept as evidence metadata, and the stored copy is written again
without any metadata, so a volunteer's camera details and home location are not published.
"""

from __future__ import annotations

import io
import warnings
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import pillow_heif
from PIL import Image, ImageOps, UnidentifiedImageError

pillow_heif.register_heif_opener()

MAX_PIXELS = 50_000_000
"""About 8,000 x 6,000: any phone's photo, far below what a bomb declares."""

JPEG, PNG, HEIC = "image/jpeg", "image/png", "image/heic"
PDF, MP4, QUICKTIME = "application/pdf", "video/mp4", "video/quicktime"
IMAGES = (JPEG, PNG, HEIC)
_HEIC_BRANDS = {b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1"}
_MP4_BRANDS = {
    b"isom",
    b"iso2",
    b"iso4",
    b"iso5",
    b"iso6",
    b"mp41",
    b"mp42",
    b"avc1",
    b"M4V ",
    b"dash",
}
_QT_ATOMS = {b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"}
_GPS_IFD, _EXIF_IFD = 0x8825, 0x8769
_DATETIME_ORIGINAL, _DATETIME = 0x9003, 0x0132


class BadFile(Exception):
    """The bytes are not a file of an accepted type, or not a sound one."""


def sniff(head: bytes) -> str | None:
    """The media type the first bytes announce, or None when it is not one we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return JPEG
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return PNG
    if head.startswith(b"%PDF-"):
        return PDF
    if len(head) >= 12 and head[4:8] == b"ftyp":
        brand = head[8:12]
        if brand in _HEIC_BRANDS:
            return HEIC
        if brand == b"qt  ":
            return QUICKTIME
        if brand in _MP4_BRANDS:
            return MP4
        return None
    if len(head) >= 8 and head[4:8] in _QT_ATOMS:
        return QUICKTIME
    return None


@dataclass(frozen=True)
class ImageFacts:
    """What an image says about itself, and the copy to store."""

    width: int
    height: int
    latitude: float | None
    longitude: float | None
    taken_at: datetime | None
    cleaned: bytes
    """The image without EXIF or other metadata, in its own format."""


def _degrees(value: Any, ref: Any) -> float | None:
    try:
        d, m, s = (float(part) for part in value)
    except (TypeError, ValueError, ZeroDivisionError):
        return None
    degrees = d + m / 60 + s / 3600
    return -degrees if str(ref).upper() in ("S", "W") else degrees


def _exif_facts(image: Image.Image) -> tuple[float | None, float | None, datetime | None]:
    exif = image.getexif()
    gps = exif.get_ifd(_GPS_IFD)
    lat = _degrees(gps.get(2), gps.get(1)) if gps else None
    lng = _degrees(gps.get(4), gps.get(3)) if gps else None
    if (lat is not None and not -90 <= lat <= 90) or (lng is not None and not -180 <= lng <= 180):
        lat = lng = None
    raw = exif.get_ifd(_EXIF_IFD).get(_DATETIME_ORIGINAL) or exif.get(_DATETIME)
    taken = None
    if isinstance(raw, str):
        try:
            taken = datetime.strptime(raw.strip("\x00 "), "%Y:%m:%d %H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            taken = None
    return lat, lng, taken


def inspect_image(data: bytes, media_type: str) -> ImageFacts:
    """Reads an image's size, GPS position and capture time, and returns it without metadata.
    BadFile for a corrupt or truncated image, or one declaring more than MAX_PIXELS."""
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data))
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise BadFile(f"the image declares {width}x{height} pixels")
            lat, lng, taken = _exif_facts(image)
            image.load()
            upright = ImageOps.exif_transpose(image)
        except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
            raise BadFile(f"not a readable image: {type(exc).__name__}") from None
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise BadFile("the image declares too many pixels") from None
    out = io.BytesIO()
    fmt = {JPEG: "JPEG", PNG: "PNG", HEIC: "HEIF"}[media_type]
    options: dict[str, Any] = {"quality": 92} if fmt in ("JPEG", "HEIF") else {}
    if fmt == "JPEG" and upright.mode not in ("RGB", "L"):
        upright = upright.convert("RGB")
    elif upright.mode == "P":
        upright = upright.convert("RGBA")
    # A fresh image object carries no EXIF, XMP, ICC text or comments into the saved copy.
    clean = Image.new(upright.mode, upright.size)
    clean.paste(upright)
    clean.save(out, fmt, **options)
    return ImageFacts(width, height, lat, lng, taken, out.getvalue())
