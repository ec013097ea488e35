"""Where backup files live: a local directory (the default) or an S3-compatible bucket.

A store holds named objects (`<name>.dump`, `<name>.json`) and nothing else: what they mean is
`services.ops.backup`'s business. Dumps are written to the store's work directory first (on the
local store it is the backups directory itself, so storing is a rename); `fetched()` hands back a
local path to read a stored file from (on S3, a download that is removed afterwards).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Protocol

from aiobotocore.session import get_session
from botocore.exceptions import BotoCoreError, ClientError

from services.core.s3 import S3Location, S3Patience, s3_client
from services.core.settings import Settings
from services.ops.errors import BackupError, BackupMissing

CHUNK = 1024 * 1024
PART_BYTES = 64 * 1024 * 1024
"""Files larger than this go up in parts of this size (one PUT takes at most 5 GB)."""


class BackupStore(Protocol):
    """Named backup files, wherever they are kept."""

    work_dir: Path
    """A local directory for files on their way in or out (dumps being written, downloads)."""

    def describe(self) -> str:
        """Where the files are, for messages (a path or `s3://bucket/prefix`)."""
        ...

    async def put(self, name: str, source: Path, *, sha256: str) -> None:
        """Stores the local file `source` (in `work_dir`) as `name` and removes `source`."""
        ...

    async def put_text(self, name: str, text: str) -> None:
        """Stores a small text file."""
        ...

    async def get_text(self, name: str) -> str:
        """A small text file's contents (BackupError when there is none)."""
        ...

    def fetched(self, name: str) -> contextlib.AbstractAsyncContextManager[Path]:
        """A local path holding the stored file while the context lasts (BackupError when
        there is none)."""
        ...

    def connected(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Calls within the context (in this task) share one connection to the store."""
        ...

    async def names(self) -> list[str]:
        """Every stored name."""
        ...

    async def delete(self, name: str) -> None:
        """Removes the file (no error when it is gone already)."""
        ...


class LocalBackupStore:
    """Backup files in one directory."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.work_dir = directory

    def describe(self) -> str:
        return str(self.directory)

    def _path(self, name: str) -> Path:
        if "/" in name or name.startswith("."):
            raise BackupError(f"not a backup file name: {name!r}")
        return self.directory / name

    async def put(self, name: str, source: Path, *, sha256: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.replace(source, self._path(name))  # the work dir is this directory: a rename

    async def put_text(self, name: str, text: str) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        partial = self.directory / f".{name}.{uuid.uuid4().hex[:8]}.partial"
        partial.write_text(text)
        os.replace(partial, self._path(name))  # readers see the whole manifest or none

    async def get_text(self, name: str) -> str:
        try:
            return self._path(name).read_text()
        except FileNotFoundError:
            raise BackupMissing(f"{name} is missing from {self.directory}") from None

    @contextlib.asynccontextmanager
    async def fetched(self, name: str) -> AsyncIterator[Path]:
        path = self._path(name)
        if not path.exists():
            raise BackupMissing(f"{name} is missing from {self.directory}")
        yield path

    async def names(self) -> list[str]:
        if not self.directory.exists():
            return []
        return sorted(
            p.name for p in self.directory.iterdir() if p.is_file() and not p.name.startswith(".")
        )

    async def delete(self, name: str) -> None:
        self._path(name).unlink(missing_ok=True)

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        yield


class S3BackupStore:
    """Backup files as objects under a prefix of one bucket, through aiobotocore."""

    def __init__(
        self,
        location: S3Location,
        work_dir: Path,
        *,
        part_bytes: int = PART_BYTES,
        max_attempts: int = 5,
    ) -> None:
        self.location = location
        self.work_dir = work_dir
        self._part_bytes = part_bytes
        self._max_attempts = max_attempts
        self._session = get_session()
        self._shared: ContextVar[Any | None] = ContextVar(f"s3-backups-{id(self)}", default=None)

    def describe(self) -> str:
        return f"s3://{self.location.bucket}/{self.location.prefix}"

    @contextlib.asynccontextmanager
    async def connected(self) -> AsyncIterator[None]:
        if self._shared.get() is not None:
            yield
            return
        async with self._new_client() as client:
            token = self._shared.set(client)
            try:
                yield
            finally:
                self._shared.reset(token)

    @contextlib.asynccontextmanager
    async def _client(self) -> AsyncIterator[Any]:
        shared = self._shared.get()
        if shared is not None:
            yield shared
            return
        async with self._new_client() as client:
            yield client

    def _new_client(self) -> contextlib.AbstractAsyncContextManager[Any]:
        # Nobody waits on a backup interactively: retry transient errors a few times.
        return s3_client(self._session, self.location, S3Patience(5, 120, self._max_attempts))

    def _key(self, name: str) -> str:
        return self.location.key(name)

    @contextlib.asynccontextmanager
    async def _errors(self, doing: str) -> AsyncIterator[None]:
        try:
            yield
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            raise BackupError(f"{doing} in {self.describe()}: {code or exc}") from None
        except (BotoCoreError, OSError) as exc:
            raise BackupError(f"{doing} in {self.describe()}: {exc}") from None

    async def put(self, name: str, source: Path, *, sha256: str) -> None:
        try:
            async with self._errors(f"storing {name}"), self._client() as client:
                size = (await asyncio.to_thread(source.stat)).st_size
                if size <= self._part_bytes:
                    with source.open("rb") as body:
                        await client.put_object(
                            Bucket=self.location.bucket,
                            Key=self._key(name),
                            Body=body,
                            ChecksumSHA256=base64.b64encode(bytes.fromhex(sha256)).decode(),
                        )
                else:
                    await self._put_in_parts(client, name, source)
        finally:
            await asyncio.to_thread(source.unlink, missing_ok=True)

    async def _put_in_parts(self, client: Any, name: str, source: Path) -> None:
        key = self._key(name)
        upload = await client.create_multipart_upload(Bucket=self.location.bucket, Key=key)
        upload_id = upload["UploadId"]
        parts = []
        try:
            with source.open("rb") as handle:
                number = 1
                while data := await asyncio.to_thread(handle.read, self._part_bytes):
                    # botocore adds and the store checks a checksum of every part it sends.
                    sent = await client.upload_part(
                        Bucket=self.location.bucket,
                        Key=key,
                        UploadId=upload_id,
                        PartNumber=number,
                        Body=data,
                    )
                    parts.append({"PartNumber": number, "ETag": sent["ETag"]})
                    number += 1
            await client.complete_multipart_upload(
                Bucket=self.location.bucket,
                Key=key,
                UploadId=upload_id,
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            # Unfinished parts are billed until aborted.
            with contextlib.suppress(BotoCoreError, ClientError, OSError):
                await client.abort_multipart_upload(
                    Bucket=self.location.bucket, Key=key, UploadId=upload_id
                )
            raise

    async def put_text(self, name: str, text: str) -> None:
        async with self._errors(f"storing {name}"), self._client() as client:
            await client.put_object(
                Bucket=self.location.bucket, Key=self._key(name), Body=text.encode()
            )

    async def get_text(self, name: str) -> str:
        async with self._errors(f"reading {name}"), self._client() as client:
            try:
                response = await client.get_object(Bucket=self.location.bucket, Key=self._key(name))
            except ClientError as exc:
                if _missing(exc):
                    raise BackupMissing(f"{name} is missing from {self.describe()}") from None
                raise
            async with response["Body"] as body:
                return (await body.read()).decode()

    @contextlib.asynccontextmanager
    async def fetched(self, name: str) -> AsyncIterator[Path]:
        self.work_dir.mkdir(parents=True, exist_ok=True)
        target = self.work_dir / f".{name}.{uuid.uuid4().hex[:8]}.download"
        try:
            async with self._errors(f"fetching {name}"), self._client() as client:
                try:
                    response = await client.get_object(
                        Bucket=self.location.bucket, Key=self._key(name)
                    )
                except ClientError as exc:
                    if _missing(exc):
                        raise BackupMissing(f"{name} is missing from {self.describe()}") from None
                    raise
                with target.open("wb") as out:
                    async with response["Body"] as body:
                        while chunk := await body.read(CHUNK):
                            await asyncio.to_thread(out.write, chunk)
            yield target
        finally:
            target.unlink(missing_ok=True)

    async def names(self) -> list[str]:
        found: list[str] = []
        async with self._errors("listing backups"), self._client() as client:
            pages = client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=self.location.prefix
            )
            async for page in pages:
                for item in page.get("Contents", []):
                    name = item["Key"][len(self.location.prefix) :]
                    if name and "/" not in name:
                        found.append(name)
        return sorted(found)

    async def delete(self, name: str) -> None:
        async with self._errors(f"deleting {name}"), self._client() as client:
            await client.delete_object(Bucket=self.location.bucket, Key=self._key(name))


def _missing(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") in ("NoSuchKey", "404", "NotFound")


def backup_work_dir(settings: Settings) -> Path:
    """BACKUP_DIR, else DATA_DIR/backups: the local store's directory, and S3's work space."""
    return settings.backup_dir or settings.data_dir / "backups"


def open_backup_store(settings: Settings) -> BackupStore:
    """The store BACKUP_STORAGE names: `local` (BACKUP_DIR) or `s3` (BACKUP_BUCKET under
    BACKUP_PREFIX, reached with the S3_* endpoint and credentials)."""
    work_dir = backup_work_dir(settings)
    prefix = settings.backup_prefix.strip("/")
    if settings.backup_storage == "local":
        return LocalBackupStore(work_dir)
    location = S3Location.from_settings(
        settings, bucket=settings.backup_bucket, prefix=f"{prefix}/" if prefix else ""
    )
    return S3BackupStore(location, work_dir)
