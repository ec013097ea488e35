"""Where evidence files live, behind one small interface (`FileStore`): the local filesystem
under the data directory (the embedded stack), or S3-compatible object storage (AWS S3, R2,
MinIO) through aiobotocore.

Keys are content addresses (the SHA-256 of the bytes), so storing the same file twice stores it
once. A file is stored before the row that names it is committed; `stored()` lists what is stored
with its age, for the sweep that removes files whose row never landed. Sizes are checked while
the bytes stream in, never after buffering them all.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import os
import tempfile
from collections.abc import AsyncIterable, AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from services.core.s3 import S3Location, S3Patience, s3_client

CHUNK = 256 * 1024


class FileTooLarge(Exception):
    """More bytes arrived than allowed; nothing was stored."""

    def __init__(self, max_bytes: int) -> None:
        super().__init__(max_bytes)
        self.max_bytes = max_bytes


class StorageUnavailable(Exception):
    """The object store did not answer; nothing was stored."""


class FileMissing(Exception):
    """No file under this key."""


@dataclass(frozen=True)
class StoredFile:
    """A stored file: its content address and size."""

    key: str
    size: int


class FileStore(Protocol):
    """Content-addressed file storage."""

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StoredFile:
        """Stores the bytes (FileTooLarge as soon as they pass `max_bytes`)."""
        ...

    def open(self, key: str) -> AsyncIterator[bytes]:
        """The file's bytes in chunks (FileMissing when there is none)."""
        ...

    async def delete(self, key: str) -> None:
        """Removes the file (no error when it is gone already)."""
        ...

    def stored(self) -> AsyncIterator[tuple[str, datetime]]:
        """Every stored key and when it was stored."""
        ...


async def _spool(
    chunks: AsyncIterable[bytes], max_bytes: int, directory: Path
) -> tuple[Path, str, int]:
    """Writes the stream to a temporary file in `directory`, hashing it; (path, sha256, size)."""
    digest, size = hashlib.sha256(), 0
    fd, name = tempfile.mkstemp(prefix=".upload-", dir=directory)
    path = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            async for chunk in chunks:
                size += len(chunk)
                if size > max_bytes:
                    raise FileTooLarge(max_bytes)
                digest.update(chunk)
                await asyncio.to_thread(out.write, chunk)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(name)
        raise
    return path, digest.hexdigest(), size


class LocalFileStore:
    """Files under a directory, in two levels of fan-out (`ab/abcdef…`)."""

    def __init__(self, root: Path) -> None:
        self._root = root

    def _path(self, key: str) -> Path:
        if len(key) != 64 or not all(c in "0123456789abcdef" for c in key):
            raise FileMissing(key)
        return self._root / key[:2] / key

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StoredFile:
        self._root.mkdir(parents=True, exist_ok=True)
        temp, key, size = await _spool(chunks, max_bytes, self._root)
        target = self._path(key)
        target.parent.mkdir(exist_ok=True)
        os.replace(temp, target)  # atomic: a reader sees the whole file or none
        return StoredFile(key, size)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        path = self._path(key)
        try:
            handle = path.open("rb")
        except FileNotFoundError:
            raise FileMissing(key) from None
        with handle:
            while chunk := await asyncio.to_thread(handle.read, CHUNK):
                yield chunk

    async def delete(self, key: str) -> None:
        with contextlib.suppress(FileMissing):
            self._path(key).unlink(missing_ok=True)

    async def stored(self) -> AsyncIterator[tuple[str, datetime]]:
        if not self._root.exists():
            return
        for path in sorted(self._root.glob("??/*")):
            stat = path.stat()
            yield path.name, datetime.fromtimestamp(stat.st_mtime, UTC)


class S3FileStore:
    """Files as objects of one bucket (private: downloads stream through the service)."""

    def __init__(self, location: S3Location, spool_dir: Path) -> None:
        self._location = location
        self._spool_dir = spool_dir
        self._session = get_session()

    def _client(self) -> contextlib.AbstractAsyncContextManager[Any]:
        # Fail fast: a caller waiting on an upload gets UNAVAILABLE, not a minute of retries.
        return s3_client(self._session, self._location, S3Patience(3, 20, 2))

    def _key(self, key: str) -> str:
        return self._location.key(key)

    async def put(self, chunks: AsyncIterable[bytes], *, max_bytes: int) -> StoredFile:
        self._spool_dir.mkdir(parents=True, exist_ok=True)
        temp, key, size = await _spool(chunks, max_bytes, self._spool_dir)
        try:
            async with self._client() as client:
                with temp.open("rb") as body:
                    await client.put_object(
                        Bucket=self._location.bucket,
                        Key=self._key(key),
                        Body=body,
                        ChecksumSHA256=_b64(key),
                    )
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageUnavailable(type(exc).__name__) from None
        finally:
            temp.unlink(missing_ok=True)
        return StoredFile(key, size)

    async def open(self, key: str) -> AsyncIterator[bytes]:
        try:
            async with self._client() as client:
                response = await client.get_object(Bucket=self._location.bucket, Key=self._key(key))
                async with response["Body"] as body:
                    while chunk := await body.read(CHUNK):
                        yield chunk
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404"):
                raise FileMissing(key) from None
            raise StorageUnavailable(type(exc).__name__) from None
        except (BotoCoreError, OSError) as exc:
            raise StorageUnavailable(type(exc).__name__) from None

    async def delete(self, key: str) -> None:
        try:
            async with self._client() as client:
                await client.delete_object(Bucket=self._location.bucket, Key=self._key(key))
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageUnavailable(type(exc).__name__) from None

    async def stored(self) -> AsyncIterator[tuple[str, datetime]]:
        try:
            async with self._client() as client:
                pages = client.get_paginator("list_objects_v2").paginate(
                    Bucket=self._location.bucket, Prefix=self._location.prefix
                )
                async for page in pages:
                    for item in page.get("Contents", []):
                        yield item["Key"][len(self._location.prefix) :], item["LastModified"]
        except (BotoCoreError, ClientError, OSError) as exc:
            raise StorageUnavailable(type(exc).__name__) from None


def _b64(hex_digest: str) -> str:
    return base64.b64encode(bytes.fromhex(hex_digest)).decode()
