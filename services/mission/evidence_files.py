"""What an evidence file really is, and an image's facts before its metadata is removed.

The type comes from the bytes, never from the client's header: JPEG, PNG, HEIC, PDF, MP4 and
QuickTime are accepted, anything else is refused (a zip renamed `.jpg` is a zip). Images are
opened with Pillow (HEIC through pillow-heif); a declared size above `MAX_PIXELS` is refused
from the header, before any pixel is decoded (decompression bombs). Their EXIF GPS position and
capture time are read, to be kept as evidence metadata, and the stored copy carries no metadata,
so a volunteer's camera details and home location are not published.

An upright JPEG or PNG (no EXIF rotation) is cleaned without decoding a pixel: its structure is
walked and checked (every segment or chunk whole, CRCs right, the image's end marker present) and
every metadata segment or chunk is dropped, leaving the compressed image data untouched. That
costs about a millisecond and no pixel memory, where decoding and re-encoding a 12-megapixel
photo costs a few hundred milliseconds of CPU and tens of MB. A rotated photo, and every HEIC, is
decoded, turned upright and encoded again.
"""

from __future__ import annotations

import io
import struct
import warnings
import zlib
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
_ORIENTATION = 0x0112
# PNG chunks that describe how to show the pixels; every other ancillary chunk (text, EXIF,
# time, private ones) is dropped.
_PNG_KEPT = {
    b"IHDR", b"PLTE", b"IDAT", b"IEND", b"tRNS", b"gAMA", b"cHRM", b"sRGB", b"iCCP", b"sBIT",
    b"pHYs", b"bKGD",
}  # fmt: skip
# JPEG markers without a length: SOI, EOI, RST0-7, TEM.
_JPEG_STANDALONE = {0xD8, 0xD9, 0x01, *range(0xD0, 0xD8)}


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


def _jpeg_without_metadata(data: bytes) -> bytes:
    """The JPEG's segments less APP1-APP15 (EXIF, XMP, IPTC, MPF, maker notes) and comments,
    keeping JFIF (APP0), an ICC profile (APP2) and Adobe's colour marker (APP14); anything after
    the primary image's end marker (phones append thumbnails and depth maps) is dropped."""
    if not data.startswith(b"\xff\xd8"):
        raise BadFile("not a JPEG")
    # Slices of a memoryview copy nothing: the one copy is the final join.
    view = memoryview(data)
    out: list[bytes | memoryview] = [b"\xff\xd8"]
    i, size = 2, len(data)
    scanning = False
    while True:
        if scanning:
            # Entropy-coded data: a marker is 0xFF followed by neither 0x00 (a stuffed byte)
            # nor a restart marker.
            j = data.find(b"\xff", i)
            while j != -1 and j + 1 < size and (data[j + 1] == 0 or 0xD0 <= data[j + 1] <= 0xD7):
                j = data.find(b"\xff", j + 2)
            if j == -1 or j + 1 >= size:
                raise BadFile("the JPEG is truncated (no end of image)")
            out.append(view[i:j])
            i, scanning = j, False
        if i + 2 > size or data[i] != 0xFF:
            raise BadFile("the JPEG is truncated or corrupt")
        marker = data[i + 1]
        if marker == 0xFF:  # fill byte
            i += 1
            continue
        if marker == 0xD9:
            out.append(b"\xff\xd9")
            return b"".join(out)
        if marker in _JPEG_STANDALONE:
            out.append(data[i : i + 2])
            i += 2
            continue
        if i + 4 > size:
            raise BadFile("the JPEG is truncated")
        end = i + 2 + struct.unpack(">H", data[i + 2 : i + 4])[0]
        if end > size or end < i + 4:
            raise BadFile("the JPEG is truncated or corrupt")
        metadata = marker == 0xFE or (0xE1 <= marker <= 0xEF and marker != 0xEE)
        if marker == 0xE2 and data[i + 4 : i + 16] == b"ICC_PROFILE\x00":
            metadata = False
        if not metadata:
            out.append(view[i:end])
        i, scanning = end, marker == 0xDA


def _png_without_metadata(data: bytes) -> bytes:
    """The PNG's chunks that describe its pixels (IHDR, palette, data, colour, transparency,
    density), each checked whole with its CRC; text, EXIF, time and private chunks dropped."""
    if not data.startswith(b"\x89PNG\r\n\x1a\n"):
        raise BadFile("not a PNG")
    view = memoryview(data)
    out: list[bytes | memoryview] = [data[:8]]
    i, size = 8, len(data)
    while True:
        if i + 12 > size:
            raise BadFile("the PNG is truncated (no IEND chunk)")
        length, kind = struct.unpack(">I4s", data[i : i + 8])
        end = i + 12 + length
        if end > size:
            raise BadFile("the PNG is truncated")
        (crc,) = struct.unpack(">I", data[end - 4 : end])
        if zlib.crc32(view[i + 4 : end - 4]) != crc:
            raise BadFile(f"the PNG's {kind.decode('latin-1')} chunk is corrupt")
        if kind in _PNG_KEPT:
            out.append(view[i:end])
        if kind == b"IEND":
            return b"".join(out)
        i = end


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
            if media_type in (JPEG, PNG) and image.getexif().get(_ORIENTATION, 1) == 1:
                strip = _jpeg_without_metadata if media_type == JPEG else _png_without_metadata
                return ImageFacts(width, height, lat, lng, taken, strip(data))
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
