"""Evidence files: the type from the bytes, an image's facts, and a stored copy without metadata;
zips in disguise, truncated images and decompression bombs refused."""

from __future__ import annotations

import io
import struct
import time
import zipfile
import zlib
from datetime import UTC, datetime
from typing import Any

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


def _photo(size: tuple[int, int] = (640, 480), **save: Any) -> bytes:
    image = Image.frombytes("RGB", size, bytes(range(256)) * (size[0] * size[1] * 3 // 256 + 1))
    exif = Image.Exif()
    exif[0x0110] = "Phone X (camera model)"
    exif[0x8825] = {1: "N", 2: (37.0, 48.0, 8.64), 3: "W", 4: (122.0, 15.0, 25.2)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif, comment=b"shot at 12 Elm Street", **save)
    return out.getvalue()


def _with_segment(jpeg: bytes, marker: int, payload: bytes) -> bytes:
    """The JPEG with one more segment right after SOI."""
    segment = bytes((0xFF, marker)) + struct.pack(">H", len(payload) + 2) + payload
    return jpeg[:2] + segment + jpeg[2:]


# The MPF segment names a secondary image that is not there: Pillow says so, as it would to a
# client's upload, and reads the base image.
@pytest.mark.filterwarnings("ignore:Image appears to be a malformed MPO file:UserWarning")
@pytest.mark.parametrize("progressive", [False, True])
def test_an_upright_jpeg_loses_every_metadata_segment_but_not_a_pixel(progressive: bool) -> None:
    original = _photo(progressive=progressive)
    xmp = b"http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>GPS 37.8 -122.2</x:xmpmeta>"
    mpf = b"MPF\x00secondary image follows"
    icc = b"ICC_PROFILE\x00\x01\x01" + b"\x00" * 64
    sent = _with_segment(_with_segment(_with_segment(original, 0xE1, xmp), 0xE2, mpf), 0xE2, icc)
    sent += _photo((32, 32))  # an appended thumbnail with its own EXIF, as phones write
    facts = inspect_image(sent, JPEG)
    assert facts.latitude == pytest.approx(37.8024, abs=1e-4)
    cleaned = facts.cleaned
    for secret in (b"Phone X", b"Elm Street", b"xmpmeta", b"MPF\x00", b"Exif\x00"):
        assert secret not in cleaned, secret
    assert b"ICC_PROFILE" in cleaned  # colour, not metadata
    stored = Image.open(io.BytesIO(cleaned))
    assert not stored.getexif() and stored.size == (640, 480)
    assert stored.tobytes() == Image.open(io.BytesIO(original)).tobytes()


def test_a_rotated_photo_is_turned_upright_and_encoded_again() -> None:
    image = Image.new("RGB", (60, 20), (200, 10, 10))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    exif[0x0110] = "Phone X (camera model)"
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    facts = inspect_image(out.getvalue(), JPEG)
    stored = Image.open(io.BytesIO(facts.cleaned))
    assert stored.size == (20, 60) and not stored.getexif()


def test_png_text_exif_and_time_chunks_are_dropped_and_broken_chunks_refused() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Location", "12 Elm Street")
    info.add_itxt("Comment", "home of the volunteer")
    exif = Image.Exif()
    exif[0x0110] = "Phone X (camera model)"
    out = io.BytesIO()
    Image.new("RGB", (40, 30), (5, 100, 5)).save(out, "PNG", pnginfo=info, exif=exif)
    sent = out.getvalue()
    cleaned = inspect_image(sent, PNG).cleaned
    for secret in (b"Elm Street", b"volunteer", b"Phone X", b"tEXt", b"iTXt", b"eXIf"):
        assert secret not in cleaned
    assert Image.open(io.BytesIO(cleaned)).tobytes() == Image.open(io.BytesIO(sent)).tobytes()
    corrupt = bytearray(sent)
    corrupt[20] ^= 0xFF  # inside IHDR: its CRC no longer matches
    with pytest.raises(BadFile):
        inspect_image(bytes(corrupt), PNG)
    with pytest.raises(BadFile):
        inspect_image(sent[:-12], PNG)  # no IEND


def test_a_twelve_megapixel_upright_photo_is_cleaned_in_milliseconds() -> None:
    big = _photo((4000, 3000))
    started = time.perf_counter()
    facts = inspect_image(big, JPEG)
    assert time.perf_counter() - started < 0.1
    assert (facts.width, facts.height) == (4000, 3000)
