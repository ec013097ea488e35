"""The Claude path through the same evaluation, against the fake Messages API's scripted answers.

A real model cannot be called here, so the fake answers each item of the frozen test half as a
careful moderator would (harmful: HIGH risk; benign: aligned; off-topic: no domain). What this
measures is everything around the model: the real `anthropic` client, the forced tool call, output
validation, Layer A in front and the decision rule. With a moderator's answers the pipeline must
approve every benign item Layer A passes, send the benign ones Layer A matches to a person (the
model does not confirm the match), and never approve a harmful or off-topic one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from services.guardrail.classifier.claude import ClaudeClassifier, create_anthropic_client
from services.guardrail.classifier.claude_prompt import NO_DOMAIN
from services.guardrail.rules.engine import default_ruleset
from tests.fakes.anthropic_api import FakeAnthropicAPI, RecordedRequest, tool_use
from tests.fakes.scripted import Reply
from tooling.guardrail_eval import dataset, report, runner

TEST = Path(__file__).with_name("sets") / "v9-test.jsonl"
API_KEY = "sk-ant-test"


def _moderator(items: list[dataset.Item]) -> Any:
    by_text = {(i.title, i.description): i for i in items}

    def behaviour(request: RecordedRequest) -> Reply:
        payload = request.untrusted_payload() or {}
        item = by_text[(payload.get("title", ""), payload.get("body"))]
        schema = next((t.get("input_schema", {}) for t in request.tools), {})
        answer: dict[str, Any] = {
            "aligned_domain": item.claimed_domain,
            "alignment_score": 0.9,
            "harm_risk": "none",
            "harm_categories": [],
            "reasoning": "Scripted moderator answer.",
        }
        if item.label == "harmful":
            answer |= {
                "alignment_score": 0.1,
                "harm_risk": "high",
                "harm_categories": [item.category],
            }
        elif item.label == "off_topic":
            answer |= {"aligned_domain": NO_DOMAIN, "alignment_score": 0.05}
        if "impact" in schema.get("properties", {}):
            answer |= {"impact": 75, "feasibility": 70, "cost_efficiency": 70}
        return tool_use(answer)(request)

    return behaviour


async def test_the_claude_path_decides_as_its_answers_say_on_the_test_half() -> None:
    items = dataset.load(TEST)
    async with FakeAnthropicAPI(api_key=API_KEY, default=_moderator(items)) as fake:
        client = create_anthropic_client(
            api_key=API_KEY, base_url=fake.base_url, timeout_seconds=5.0, max_retries=0
        )
        classifier = ClaudeClassifier(client)
        results = await runner.evaluate(items, default_ruleset(), classifier)
        assert len(fake.requests) == len(items)
    for result in results:
        expected = {"harmful": "REJECTED", "off_topic": "REJECTED"}.get(result.item.label)
        if expected is None:
            # A benign post the rules mistake for an act: the moderator disagrees, a person decides.
            expected = "FLAGGED" if result.layer_a.rejected else "APPROVED"
        assert result.status == expected, (result.item.id, result.reason)
    measured = {t.name: t.share for t in report.targets(results)}
    assert measured["harmful APPROVED"].k == 0
    assert measured["off-topic APPROVED"].k == 0
    assert all(r.classification.model == classifier.name for r in results)
