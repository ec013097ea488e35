"""Evidence over JSON through real Envoy: the request body is the file itself with its metadata
in the query string (201), a body over 10 MiB is refused by Envoy with 413 before the service
reads it, a file that is not what its content type says is a 400 naming `file`, the download is
the stored bytes with their content type, and peers vote over JSON."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.mission.evidence_model import MAX_EVIDENCE_BYTES
from tests.support.e2e_http import json_error
from tests.support.e2e_stack import envoy_in_front
from tests.support.evidence import EvidenceWorld, now_text, png
from tests.support.missions import MissionWorld

pytestmark = pytest.mark.e2e


@pytest.fixture
async def edge(
    mission_world: MissionWorld, tmp_path: Path
) -> AsyncIterator[tuple[EvidenceWorld, httpx.AsyncClient]]:
    async with envoy_in_front({"mission": mission_world.service.server.port}, tmp_path) as http:
        yield EvidenceWorld(mission_world), http


def _auth(human: tuple[tuple[str, str], ...]) -> dict[str, str]:
    return dict(human)


async def test_a_raw_png_body_with_query_metadata_is_evidence(
    edge: tuple[EvidenceWorld, httpx.AsyncClient],
) -> None:
    ew, http = edge
    _, mission_id, human = await ew.claimed()
    peers = [await ew.world.human() for _ in range(3)]
    query = f"?latitude=37.8024&longitude=-122.2570&capturedAt={now_text()}&notes=north%20shore"
    path = f"/api/v1/missions/{mission_id}/evidence{query}"
    headers = {**_auth(human), "content-type": "image/png"}
    data = png((120, 80))
    created = await http.post(path, content=data, headers=headers)
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["status"] == "IN_REVIEW" and body["notes"] == "north shore"
    assert body["mediaType"] == "image/png" and body["latitude"] == 37.8024
    evidence_id = body["evidenceId"]

    wrong = await http.post(path, content=b"this is not an image at all", headers=headers)
    assert "file" in json_error(wrong, 400).field_violations
    unknown = await http.post(f"{path}&colour=blue", content=data, headers=headers)
    assert unknown.status_code == 400

    download = await http.get(f"/api/v1/evidence/{evidence_id}/file", headers=_auth(human))
    assert download.status_code == 200, download.text
    assert download.headers["content-type"] == "image/png"
    assert download.content[:8] == b"\x89PNG\r\n\x1a\n" and len(download.content) == int(
        body["sizeBytes"]
    )
    status = await http.get(f"/api/v1/evidence/{evidence_id}/status", headers=_auth(human))
    assert status.json()["reviewersAssigned"] == 3

    voted = 0
    for peer in peers:
        pending = await http.get("/api/v1/peer-reviews/pending", headers=_auth(peer))
        if evidence_id not in pending.text:
            continue
        vote = {
            "verdict": "APPROVE",
            "confidence": 0.9,
            "reasoning": "The photo shows labelled bottles at the marked point.",
        }
        cast = await http.post(
            f"/api/v1/peer-reviews/{evidence_id}/vote", json=vote, headers=_auth(peer)
        )
        assert cast.status_code == 201, cast.text
        again = await http.post(
            f"/api/v1/peer-reviews/{evidence_id}/vote", json=vote, headers=_auth(peer)
        )
        assert json_error(again, 409).reason == "ALREADY_VOTED"
        voted += 1
    assert voted == 3
    final = await http.get(f"/api/v1/evidence/{evidence_id}", headers=_auth(human))
    assert final.json()["status"] == "VERIFIED" and final.json()["reward"] == "22"
    balance = await http.get("/api/v1/tokens/balance", headers=_auth(human))
    assert balance.json()["balance"] == "22"


async def test_a_body_over_ten_mebibytes_is_refused_by_envoy(
    edge: tuple[EvidenceWorld, httpx.AsyncClient],
) -> None:
    ew, http = edge
    _, mission_id, human = await ew.claimed()
    headers = {**_auth(human), "content-type": "image/png"}
    path = f"/api/v1/missions/{mission_id}/evidence"
    over = png() + b"\x00" * (MAX_EVIDENCE_BYTES + 1 - len(png()))
    one_byte_over = await http.post(path, content=over, headers=headers)
    assert json_error(one_byte_over, 413).reason == "TOO_LARGE"  # the service, to the byte
    at_limit = await http.post(path, content=over[:-1], headers=headers)
    assert at_limit.status_code == 201, at_limit.text[:300]
    far_over = await http.post(path, content=over + b"\x00" * 1024 * 1024, headers=headers)
    assert json_error(far_over, 413).reason == "BODY_TOO_LARGE"  # Envoy, before the service
    # A JSON body elsewhere keeps the 1 MiB limit.
    big_json = await http.post(
        "/api/v1/tokens/spend",
        content=b"{" + b" " * (2 * 1024 * 1024) + b"}",
        headers={**_auth(human), "content-type": "application/json"},
    )
    assert big_json.status_code == 413
