"""Evidence files: the type from the bytes, an image's facts, and a stored copy without metadata;
zips in disguise, truncated images and decompression bombs refused."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from datetime import UTC, datetime

import pytest
from PIL import Image

from services.mission.evidence_files import (
    HEIC,
    JPEG,
    MP4,
    PDF,
    PNG,
    QUICKTIME,
    BadFile,
    inspect_image,
    sniff,
)


def _jpeg_with_exif() -> bytes:
    image = Image.new("RGB", (64, 48), (30, 120, 200))
    exif = Image.Exif()
    exif[0x0110] = "Phone X (camera model)"
    gps = {1: "N", 2: (37.0, 48.0, 8.64), 3: "W", 4: (122.0, 15.0, 25.2)}
    exif[0x8825] = gps
    exif.get_ifd(0x8769)[0x9003] = "2026:12:06 14:30:05"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def _png_declaring(width: int, height: int) -> bytes:
    """A PNG header that declares a huge image (a decompression bomb's shape)."""
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = b"IHDR" + header
    ihdr = struct.pack(">I", len(header)) + chunk + struct.pack(">I", zlib.crc32(chunk))
    idat_data = zlib.compress(b"\x00" * 1024)
    idat = b"IDAT" + idat_data
    idat_chunk = struct.pack(">I", len(idat_data)) + idat + struct.pack(">I", zlib.crc32(idat))
    end = struct.pack(">I", 0) + b"IEND" + struct.pack(">I", zlib.crc32(b"IEND"))
    return b"\x89PNG\r\n\x1a\n" + ihdr + idat_chunk + end


def test_the_type_comes_from_the_bytes() -> None:
    assert sniff(_jpeg_with_exif()[:32]) == JPEG
    png = io.BytesIO()
    Image.new("RGB", (4, 4)).save(png, "PNG")
    assert sniff(png.getvalue()[:32]) == PNG
    assert sniff(b"%PDF-1.7\n%\xe2\xe3") == PDF
    assert sniff(b"\x00\x00\x00\x18ftypmp42\x00\x00\x00\x00") == MP4
    assert sniff(b"\x00\x00\x00\x14ftypqt  \x00\x00\x00\x00") == QUICKTIME
    assert sniff(b"\x00\x00\x00\x18ftypheic\x00\x00\x00\x00") == HEIC
    zipped = io.BytesIO()
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("photo.jpg", b"not really")
    assert sniff(zipped.getvalue()[:32]) is None  # a zip renamed .jpg is a zip
    for junk in (b"", b"GIF89a", b"<html>", b"\x00\x00\x00\x18ftypXXXX"):
        assert sniff(junk) is None


def test_an_images_facts_are_kept_and_its_metadata_removed() -> None:
    facts = inspect_image(_jpeg_with_exif(), JPEG)
    assert (facts.width, facts.height) == (64, 48)
    assert facts.latitude == pytest.approx(37.8024, abs=1e-4)
    assert facts.longitude == pytest.approx(-122.2570, abs=1e-4)
    assert facts.taken_at == datetime(2026, 12, 6, 14, 30, 5, tzinfo=UTC)
    stored = Image.open(io.BytesIO(facts.cleaned))
    assert stored.format == "JPEG" and stored.size == (64, 48)
    assert not stored.getexif() and b"Phone X" not in facts.cleaned


def test_broken_and_bomb_images_are_refused_without_decoding() -> None:
    whole = _jpeg_with_exif()
    with pytest.raises(BadFile):
        inspect_image(whole[: len(whole) // 2], JPEG)
    started = time.perf_counter()
    with pytest.raises(BadFile, match="declares"):
        inspect_image(_png_declaring(100_000, 100_000), PNG)
    assert time.perf_counter() - started < 0.5  # refused from the header
    with pytest.raises(BadFile):
        inspect_image(b"\x89PNG\r\n\x1a\n" + b"\x00" * 40, PNG)
