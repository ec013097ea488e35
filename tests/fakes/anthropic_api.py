"""A local fake of the Anthropic Messages API (`POST /v1/messages`) for the real `anthropic` SDK.

It speaks the wire format the SDK parses (message envelope, content blocks, usage, error bodies,
request-id and retry-after headers), checks requests the way the API does for the parts this
project relies on (auth and version headers, required fields, a forced tool that exists, no
thinking with forced tool use), records every request, and answers from a script:

    async with FakeAnthropicAPI() as fake:
        fake.script(rate_limited(retry_after=0.05), tool_use({...}))
        client = AsyncAnthropic(api_key="test", base_url=fake.base_url)

Each scripted behaviour answers one request; when the script is empty, `default` answers (if
set), otherwise a 400 that names the unscripted call. Run it standalone for manual and load tests
(`python -m tests.fakes.anthropic_api --port 8788 --delay 0.5`): it then answers every request
with a plausible evaluation.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

from tests.fakes.scripted import RecordedRequest as BaseRecordedRequest
from tests.fakes.scripted import Reply, ScriptedAPI, run_standalone

TOOL_NAME = "record_evaluation"


@dataclass(frozen=True)
class RecordedRequest(BaseRecordedRequest):
    """One request as the fake received it."""

    @property
    def model(self) -> str | None:
        """The requested model id."""
        return (self.body or {}).get("model")

    @property
    def system(self) -> str:
        """The system prompt as one string (top-level `system`, string or text blocks)."""
        system = (self.body or {}).get("system", "")
        if isinstance(system, list):
            return "".join(b.get("text", "") for b in system if isinstance(b, dict))
        return str(system)

    @property
    def tool_choice(self) -> dict[str, Any] | None:
        """The `tool_choice` object sent."""
        return (self.body or {}).get("tool_choice")

    @property
    def tools(self) -> list[dict[str, Any]]:
        """The tool definitions sent."""
        return list((self.body or {}).get("tools") or [])

    @property
    def user_text(self) -> str:
        """All text of the user turns, concatenated."""
        parts: list[str] = []
        for message in (self.body or {}).get("messages") or []:
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, str):
                parts.append(content)
            elif isinstance(content, list):
                parts.extend(
                    b.get("text", "")
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "text"
                )
        return "\n".join(parts)

    @property
    def images(self) -> list[dict[str, Any]]:
        """The `source` of every image block in the user turns, in order."""
        sources: list[dict[str, Any]] = []
        for message in (self.body or {}).get("messages") or []:
            if not isinstance(message, dict) or message.get("role") != "user":
                continue
            content = message.get("content")
            if isinstance(content, list):
                sources.extend(
                    b.get("source") or {}
                    for b in content
                    if isinstance(b, dict) and b.get("type") == "image"
                )
        return sources

    def untrusted_payload(self) -> dict[str, Any] | None:
        """The JSON between the <untrusted_content> tags of the user turn, when there is one."""
        match = re.search(
            r"<untrusted_content>\s*(.*?)\s*</untrusted_content>", self.user_text, re.DOTALL
        )
        if match is None:
            return None
        try:
            payload = json.loads(match.group(1))
        except ValueError:
            return None
        return payload if isinstance(payload, dict) else None


Behaviour = Callable[[RecordedRequest], Reply]
"""Produces the reply to one request."""

_ids = itertools.count(1)


def _estimate_tokens(text: str) -> int:
    # ~4 characters a token is close enough for cost assertions with explicit expectations.
    return max(1, len(text) // 4)


def _input_tokens(request: RecordedRequest) -> int:
    tools = json.dumps(request.tools)
    return _estimate_tokens(request.system + request.user_text + tools)


def message(
    content: list[dict[str, Any]],
    *,
    stop_reason: str | None = "end_turn",
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    delay: float = 0.0,
) -> Behaviour:
    """A 200 message with these content blocks; usage estimated from the request unless given."""

    def behaviour(request: RecordedRequest) -> Reply:
        n = next(_ids)
        out = output_tokens
        if out is None:
            out = _estimate_tokens(json.dumps(content)) + 5
        body = {
            "id": f"msg_fake{n:020d}",
            "type": "message",
            "role": "assistant",
            "model": request.model or "claude-unknown",
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": input_tokens
                if input_tokens is not None
                else _input_tokens(request),
                "output_tokens": out,
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }
        return Reply(200, body, {"request-id": f"req_fake{n:020d}"}, delay)

    return behaviour


def tool_use(
    tool_input: Any,
    *,
    name: str = TOOL_NAME,
    text_before: str | None = None,
    stop_reason: str = "tool_use",
    input_tokens: int | None = None,
    output_tokens: int | None = None,
    delay: float = 0.0,
) -> Behaviour:
    """A forced tool call with this input (any JSON value, to script malformed ones)."""
    blocks: list[dict[str, Any]] = []
    if text_before is not None:
        blocks.append({"type": "text", "text": text_before})
    blocks.append(
        {
            "type": "tool_use",
            "id": f"toolu_fake{next(_ids):018d}",
            "name": name,
            "input": tool_input,
        }
    )
    return message(
        blocks,
        stop_reason=stop_reason,
        input_tokens=input_tokens,
        output_tokens=output_tokens,
        delay=delay,
    )


def text_only(text: str = "I think this is fine.", **usage: Any) -> Behaviour:
    """A prose answer without the tool call (what a model ignoring tool_choice would send)."""
    return message([{"type": "text", "text": text}], stop_reason="end_turn", **usage)


def refusal(**usage: Any) -> Behaviour:
    """The API's safety classifier declining the request."""
    return message([], stop_reason="refusal", **usage)


def api_error(
    status: int,
    error_type: str,
    text: str,
    *,
    headers: Mapping[str, str] | None = None,
    delay: float = 0.0,
) -> Behaviour:
    """An error in the API's format: {"type": "error", "error": {"type", "message"}}."""

    def behaviour(request: RecordedRequest) -> Reply:
        request_id = f"req_fake{next(_ids):020d}"
        body = {
            "type": "error",
            "error": {"type": error_type, "message": text},
            "request_id": request_id,
        }
        return Reply(status, body, {"request-id": request_id, **(headers or {})}, delay)

    return behaviour


def rate_limited(retry_after: float = 1.0) -> Behaviour:
    """429 rate_limit_error with retry-after (seconds; the SDK accepts fractions)."""
    seconds = str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
    return api_error(
        429,
        "rate_limit_error",
        "Number of request tokens has exceeded your per-minute rate limit.",
        headers={
            "retry-after": seconds,
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": "0",
        },
    )


def server_error() -> Behaviour:
    """500 api_error."""
    return api_error(500, "api_error", "Internal server error")


def overloaded() -> Behaviour:
    """529 overloaded_error."""
    return api_error(529, "overloaded_error", "Overloaded")


def unauthorized() -> Behaviour:
    """401 authentication_error."""
    return api_error(401, "authentication_error", "invalid x-api-key")


def bad_request(text: str = "invalid request") -> Behaviour:
    """400 invalid_request_error."""
    return api_error(400, "invalid_request_error", text)


def not_json(status: int = 200) -> Behaviour:
    """A body that is not JSON (a proxy's HTML page)."""
    return lambda _request: Reply(status, "<html>bad gateway</html>", content_type="text/html")


def slow(behaviour: Behaviour, seconds: float) -> Behaviour:
    """The same reply, sent after `seconds`."""
    return lambda request: replace(behaviour(request), delay=seconds)


def plausible_evaluation(delay: float = 0.0) -> Behaviour:
    """A valid evaluation for whatever was asked: the claimed domain, low risk, and solution
    scores when the tool schema asks for them. For load tests and the standalone server."""

    def behaviour(request: RecordedRequest) -> Reply:
        payload = request.untrusted_payload() or {}
        schema: dict[str, Any] = next((t.get("input_schema", {}) for t in request.tools), {})
        domain = payload.get("claimed_domain") or "community_building"
        tool_input: dict[str, Any] = {
            "aligned_domain": domain,
            "alignment_score": 0.82,
            "harm_risk": "none",
            "harm_categories": [],
            "reasoning": "Specific, constructive social-good work in the claimed domain.",
        }
        if "impact" in schema.get("properties", {}):
            tool_input |= {"impact": 72, "feasibility": 65, "cost_efficiency": 60}
        return tool_use(tool_input, delay=delay)(request)

    return behaviour


class FakeAnthropicAPI(ScriptedAPI[RecordedRequest]):
    """The fake Anthropic Messages API on 127.0.0.1 and a free port; an async context manager."""

    request_type = RecordedRequest

    def _unscripted(self, request: RecordedRequest) -> Reply:
        return bad_request(f"fake: no reply scripted for request {len(self.requests)}")(request)

    def _reject(self, request: RecordedRequest) -> Behaviour | None:
        """What the real API refuses before any model runs, for the parts this project uses."""
        if request.path != "/v1/messages":
            return api_error(404, "not_found_error", f"Not found: {request.path}")
        if request.method != "POST":
            return api_error(405, "invalid_request_error", "Method not allowed")
        key = request.headers.get("x-api-key")
        auth = request.headers.get("authorization", "")
        if key is None and auth.lower().startswith("bearer "):
            key = auth[len("bearer ") :]
        if not key:
            return api_error(401, "authentication_error", "x-api-key header is required")
        if self.api_key is not None and key != self.api_key:
            return unauthorized()
        if "anthropic-version" not in request.headers:
            return bad_request("anthropic-version: header is required")
        body = request.body
        if body is None:
            return bad_request("request body must be a JSON object")
        if not isinstance(body.get("model"), str) or not body["model"]:
            return bad_request("model: Field required")
        max_tokens = body.get("max_tokens")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            return bad_request("max_tokens: Field required")
        if not isinstance(body.get("messages"), list) or not body["messages"]:
            return bad_request("messages: at least one message is required")
        choice = body.get("tool_choice")
        if isinstance(choice, dict) and choice.get("type") in ("tool", "any"):
            names = {t.get("name") for t in request.tools if isinstance(t, dict)}
            if choice.get("type") == "tool" and choice.get("name") not in names:
                return bad_request(f"tool_choice: tool {choice.get('name')!r} is not in tools")
            thinking = body.get("thinking")
            if isinstance(thinking, dict) and thinking.get("type") != "disabled":
                return bad_request("Thinking may not be enabled when tool_choice forces tool use.")
        return None


def main() -> None:
    """Serves until interrupted."""
    run_standalone(
        lambda delay: FakeAnthropicAPI(default=plausible_evaluation(delay)),
        description=__doc__.splitlines()[0],
        port=8788,
    )


if __name__ == "__main__":
    main()
