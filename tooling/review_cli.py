"""`betterworld review`: the operators' review queue from a terminal, over gRPC."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

import grpc
from betterworld.guardrail.v1 import guardrail_pb2 as pb
from betterworld.guardrail.v1 import guardrail_pb2_grpc

from services.core.settings import Settings

_DECISIONS = {"approve": pb.ReviewFlaggedRequest.APPROVE, "reject": pb.ReviewFlaggedRequest.REJECT}


def _stub(target: str) -> tuple[grpc.Channel, Any]:
    channel = grpc.insecure_channel(target)
    return channel, guardrail_pb2_grpc.GuardrailServiceStub(channel)


def _describe(error: grpc.RpcError) -> str:
    return f"{error.code().name}: {error.details()}"


def run_review(args: argparse.Namespace, settings: Settings) -> int:
    """Lists, shows, claims or decides flagged items (operator key from BW_OPERATOR_KEY)."""
    key = os.environ.get("BW_OPERATOR_KEY", "")
    if not key:
        print("betterworld review: set BW_OPERATOR_KEY to an operator API key", file=sys.stderr)
        return 2
    target = args.target or f"{settings.host}:{settings.service_ports('guardrail')[0]}"
    metadata = (("authorization", f"Bearer {key}"),)
    channel, stub = _stub(target)
    try:
        if args.action == "list":
            page = stub.ListFlagged(pb.ListFlaggedRequest(limit=args.limit), metadata=metadata)
            if not page.data:
                print("the review queue is empty")
            for item in page.data:
                status = pb.FlaggedItem.Status.Name(item.status)
                kind = pb.ContentType.Name(item.content_type).lower()
                holder = f" by {item.claimed_by}" if item.claimed_by else ""
                print(f"{item.flagged_id}  {kind:<8} {status}{holder}  {item.reason}")
        elif args.action == "show":
            item = stub.GetFlagged(pb.GetFlaggedRequest(flagged_id=args.id), metadata=metadata)
            print(item)
        elif args.action == "claim":
            item = stub.ClaimFlagged(pb.ClaimFlaggedRequest(flagged_id=args.id), metadata=metadata)
            print(f"claimed {item.flagged_id}")
        else:
            item = stub.ReviewFlagged(
                pb.ReviewFlaggedRequest(
                    flagged_id=args.id, decision=_DECISIONS[args.action], notes=args.notes
                ),
                metadata=metadata,
            )
            print(f"{args.action}d {item.flagged_id}")
    except grpc.RpcError as error:
        print(f"betterworld review: {_describe(error)}", file=sys.stderr)
        return 1
    finally:
        channel.close()
    return 0


def add_parser(sub: Any) -> None:
    """Registers `review` and its actions on the top-level parser."""
    review = sub.add_parser(
        "review", help="the guardrail review queue (operator key in BW_OPERATOR_KEY)"
    )
    review.add_argument("--target", help="guardrail service host:port (default from settings)")
    actions = review.add_subparsers(dest="action", required=True)
    listing = actions.add_parser("list", help="items waiting for or under review")
    listing.add_argument("--limit", type=int, default=20)
    for name, text in (("show", "one item with its evaluation"), ("claim", "claim an item")):
        action = actions.add_parser(name, help=text)
        action.add_argument("id")
    for name in ("approve", "reject"):
        action = actions.add_parser(name, help=f"{name} a claimed item")
        action.add_argument("id")
        action.add_argument("--notes", required=True, help="10-2000 characters")
