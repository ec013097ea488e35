"""EchoService: a service defined only in tests, compiled from its proto when first used.

`build(out_dir)` compiles `echo.proto` with protoc (Python modules, gRPC stubs and a descriptor
set holding every contract of the mesh plus this one, for Envoy's transcoder) and returns the
service's `ServiceDefinition`, written as any service's `definition.py` would be.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import grpc
from grpc_tools import protoc

from services.core.context import current_principal
from services.core.definition import ServiceDefinition
from services.core.runtime import Runtime

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[2]
PROTO_ROOTS = (ROOT / "protos", ROOT / "third_party" / "googleapis")
SERVICE = "testing.echo.v1.EchoService"


@dataclass(frozen=True)
class Echo:
    """The compiled test service."""

    definition: ServiceDefinition
    descriptor_set: Path
    pb2: Any
    pb2_grpc: Any


def _protoc(*args: str) -> None:
    includes = [f"-I{root}" for root in (HERE.parent, *PROTO_ROOTS)]
    builtin = Path(protoc.__file__).parent / "_proto"
    if protoc.main(["protoc", *includes, f"-I{builtin}", *args]) != 0:
        raise RuntimeError(f"protoc failed: {args}")


def build(out_dir: Path, *, port: int = 50099, metrics_port: int = 9199) -> Echo:
    """Compiles the service into `out_dir` and returns its definition."""
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "echo").mkdir(exist_ok=True)
    _protoc(f"--python_out={out_dir}", f"--grpc_python_out={out_dir}", "echo/echo.proto")
    ours = sorted(str(p.relative_to(PROTO_ROOTS[0])) for p in PROTO_ROOTS[0].rglob("*.proto"))
    descriptor_set = out_dir / "descriptor.pb"
    _protoc(
        "--include_imports",
        f"--descriptor_set_out={descriptor_set}",
        "echo/echo.proto",
        *ours,
        "google/rpc/status.proto",
        "google/rpc/error_details.proto",
    )
    if str(out_dir) not in sys.path:
        sys.path.insert(0, str(out_dir))
    pb2 = importlib.import_module("echo.echo_pb2")
    pb2_grpc = importlib.import_module("echo.echo_pb2_grpc")

    class EchoServicer(pb2_grpc.EchoServiceServicer):  # type: ignore[misc,name-defined]
        async def Echo(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
            return pb2.EchoResponse(text=request.text)

        async def WhoAmI(self, request: Any, context: grpc.aio.ServicerContext) -> Any:
            principal = current_principal()
            assert principal is not None  # the policy admits humans only
            return pb2.WhoAmIResponse(human_id=principal.id, session_id=principal.session_id)

    def register(server: grpc.aio.Server, runtime: Runtime) -> None:
        pb2_grpc.add_EchoServiceServicer_to_server(EchoServicer(), server)

    definition = ServiceDefinition(
        name="echo",
        contract=tuple(pb2.DESCRIPTOR.services_by_name.values()),
        port=port,
        metrics_port=metrics_port,
        register=register,
    )
    return Echo(definition, descriptor_set, pb2, pb2_grpc)
