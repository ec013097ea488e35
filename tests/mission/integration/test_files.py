"""Evidence file storage, the same behaviour on the local filesystem and on a real
S3-compatible server (moto in server mode, over HTTP, through aiobotocore)."""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import boto3
import pytest
from betterworld.mission.v1 import evidence_pb2
from moto.server import ThreadedMotoServer
from pydantic import SecretStr

from services.core.s3 import S3Location
from services.core.settings import Settings
from services.mission.definition import DEFINITION as MISSION
from services.mission.files import (
    FileMissing,
    FileStore,
    FileTooLarge,
    LocalFileStore,
    S3FileStore,
    StorageUnavailable,
)
from tests.support.evidence import EvidenceWorld, jpeg_with_gps
from tests.support.helpers import start_service
from tests.support.missions import MissionWorld
from tooling.devstack import free_port

BUCKET = "betterworld-evidence"
MB = 1024 * 1024


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free port, with the bucket created."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    boto3.client(
        "s3",
        endpoint_url=endpoint,
        region_name="us-east-1",
        aws_access_key_id="test",
        aws_secret_access_key="test",
    ).create_bucket(Bucket=BUCKET)
    try:
        yield endpoint
    finally:
        server.stop()


def _s3(endpoint: str, spool: Path, bucket: str = BUCKET) -> S3FileStore:
    return S3FileStore(
        S3Location(
            bucket=bucket,
            prefix="evidence/",
            endpoint_url=endpoint,
            region="us-east-1",
            access_key_id="test",
            secret_access_key="test",
        ),
        spool,
    )


@pytest.fixture(params=["local", "s3"])
def store(request: pytest.FixtureRequest, tmp_path: Path) -> FileStore:
    if request.param == "local":
        return LocalFileStore(tmp_path / "files")
    return _s3(request.getfixturevalue("s3_endpoint"), tmp_path / "spool")


async def _chunks(data: bytes, size: int = 64 * 1024) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        await asyncio.sleep(0)
        yield data[start : start + size]


async def _read(store: FileStore, key: str) -> bytes:
    return b"".join([chunk async for chunk in store.open(key)])


async def test_files_are_stored_once_by_content_and_read_back(store: FileStore) -> None:
    data = bytes(range(256)) * 4000  # ~1 MB
    stored = await store.put(_chunks(data), max_bytes=10 * MB)
    assert stored.key == hashlib.sha256(data).hexdigest() and stored.size == len(data)
    again = await store.put(_chunks(data), max_bytes=10 * MB)
    assert again == stored
    assert await _read(store, stored.key) == data
    listed = [(key, when) async for key, when in store.stored()]
    assert [key for key, _ in listed] == [stored.key]
    assert datetime.now(UTC) - listed[0][1] < timedelta(minutes=1)
    await store.delete(stored.key)
    await store.delete(stored.key)  # gone already: no error
    with pytest.raises(FileMissing):
        await _read(store, stored.key)
    with pytest.raises(FileMissing):
        await _read(store, "not-a-key")


async def test_a_file_over_the_limit_is_refused_while_streaming(store: FileStore) -> None:
    sent = 0

    async def endless() -> AsyncIterator[bytes]:
        nonlocal sent
        while True:
            sent += MB
            yield b"x" * MB

    with pytest.raises(FileTooLarge):
        await store.put(endless(), max_bytes=10 * MB)
    assert sent <= 11 * MB  # refused at the first chunk past the limit, not after reading all
    exactly = await store.put(_chunks(b"y" * (10 * MB)), max_bytes=10 * MB)
    assert exactly.size == 10 * MB
    with pytest.raises(FileTooLarge):
        await store.put(_chunks(b"y" * (10 * MB + 1)), max_bytes=10 * MB)
    assert [key async for key, _ in store.stored()] == [exactly.key]  # nothing half-written


async def test_an_unreachable_object_store_is_unavailable(tmp_path: Path) -> None:
    store = _s3(f"http://127.0.0.1:{free_port()}", tmp_path / "spool")
    with pytest.raises(StorageUnavailable):
        await store.put(_chunks(b"evidence"), max_bytes=MB)
    assert not list((tmp_path / "spool").iterdir())  # the spooled copy is gone too
    with pytest.raises(StorageUnavailable):
        await _read(store, "0" * 64)


async def test_evidence_goes_to_the_bucket_and_comes_back_through_the_service(
    s3_endpoint: str, mission_world: MissionWorld, mission_settings: Settings
) -> None:
    """The mission service with EVIDENCE_STORAGE=s3: a submission lands in the bucket under its
    content address, without its metadata, and downloads stream it back with authorization."""
    settings = mission_settings.model_copy(
        update={
            "content_internal_target": mission_world.content.service.address,
            "evidence_storage": "s3",
            "s3_endpoint_url": s3_endpoint,
            "s3_bucket": BUCKET,
            "s3_region": "us-east-1",
            "s3_access_key_id": SecretStr("test"),
            "s3_secret_access_key": SecretStr("test"),
        }
    )
    service = await start_service(dataclasses.replace(MISSION, background=None), settings)
    try:
        world = EvidenceWorld(MissionWorld(mission_world.content, service, mission_world.humans))
        _, mission_id, human = await world.claimed()
        evidence = await world.submit(mission_id, human, jpeg_with_gps(), "image/jpeg")
        objects = boto3.client(
            "s3",
            endpoint_url=s3_endpoint,
            region_name="us-east-1",
            aws_access_key_id="test",
            aws_secret_access_key="test",
        ).list_objects_v2(Bucket=BUCKET)
        assert any(o["Key"].endswith(evidence.sha256) for o in objects.get("Contents", []))
        download = evidence_pb2.DownloadEvidenceRequest(evidence_id=evidence.evidence_id)
        chunks = [c async for c in world.evidence.DownloadEvidence(download, metadata=human)]
        stored = b"".join(c.data for c in chunks)
        assert hashlib.sha256(stored).hexdigest() == evidence.sha256
        assert b"Phone X" not in stored
    finally:
        await service.stop()
