"""One S3 location type and one client factory, for every store that keeps objects in S3.

AWS S3, Cloudflare R2, MinIO or any S3-compatible endpoint (the S3_* settings). Stores differ in
how long they may wait, not in how they connect: an upload a person waits on fails fast, a
backup retries.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiobotocore.config import AioConfig

if TYPE_CHECKING:
    from aiobotocore.session import AioSession

    from services.core.settings import Settings


@dataclass(frozen=True)
class S3Location:
    """A bucket, a key prefix in it and how to reach it."""

    bucket: str
    prefix: str = ""
    """Prepended to every key ("evidence/", "backups/"); empty for the bucket's root."""
    endpoint_url: str | None = None
    """None: AWS S3; else R2, MinIO or any S3-compatible endpoint."""
    region: str = "auto"
    access_key_id: str | None = None
    secret_access_key: str | None = None

    @classmethod
    def from_settings(cls, settings: Settings, *, bucket: str, prefix: str) -> S3Location:
        """`bucket` under `prefix`, reached with the S3_* endpoint, region and credentials."""
        key_id, secret = settings.s3_access_key_id, settings.s3_secret_access_key
        return cls(
            bucket=bucket,
            prefix=prefix,
            endpoint_url=settings.s3_endpoint_url,
            region=settings.s3_region,
            access_key_id=key_id.get_secret_value() if key_id else None,
            secret_access_key=secret.get_secret_value() if secret else None,
        )

    def key(self, name: str) -> str:
        """The object key of `name` under the prefix."""
        return f"{self.prefix}{name}"


@dataclass(frozen=True)
class S3Patience:
    """How long a store waits on S3 and how often it retries a transient error."""

    connect_seconds: float
    read_seconds: float
    attempts: int
    """Total attempts per request, the first included (botocore's standard retry mode)."""


@contextlib.asynccontextmanager
async def s3_client(
    session: AioSession, location: S3Location, patience: S3Patience
) -> AsyncIterator[Any]:
    """An S3 client for `location`'s endpoint, closed on exit."""
    async with session.create_client(
        "s3",
        endpoint_url=location.endpoint_url,
        region_name=location.region,
        aws_access_key_id=location.access_key_id,
        aws_secret_access_key=location.secret_access_key,
        config=AioConfig(
            connect_timeout=patience.connect_seconds,
            read_timeout=patience.read_seconds,
            retries={"max_attempts": patience.attempts, "mode": "standard"},
        ),
    ) as client:
        yield client
