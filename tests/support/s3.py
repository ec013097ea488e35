"""A real S3-compatible server for tests: moto in server mode, over HTTP, on a free port."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import boto3
from moto.server import ThreadedMotoServer

from tooling.devstack import free_port

REGION = "us-east-1"
KEY = "test"


@dataclass(frozen=True)
class S3Server:
    """Where the server listens, and a plain boto3 client to look at what it holds."""

    endpoint: str

    def client(self) -> Any:
        """A boto3 S3 client for the server."""
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint,
            region_name=REGION,
            aws_access_key_id=KEY,
            aws_secret_access_key=KEY,
        )

    def new_bucket(self, prefix: str = "bw") -> str:
        """Creates an empty bucket of its own; returns its name."""
        name = f"{prefix}-{uuid.uuid4().hex[:12]}"
        self.client().create_bucket(Bucket=name)
        return name


@contextmanager
def moto_s3() -> Iterator[S3Server]:
    """A moto S3 server on 127.0.0.1, stopped afterwards."""
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port)
    server.start()
    try:
        yield S3Server(f"http://127.0.0.1:{port}")
    finally:
        server.stop()
