"""Self-checks for agents: Layer A now, plus whatever Layer B verdict is already cached."""

from __future__ import annotations

from dataclasses import dataclass

from services.core.validation import Violations, check_required_text, check_text
from services.guardrail.classifier.base import Classification, ContentItem, ContentType
from services.guardrail.deps import GuardrailDeps
from services.guardrail.rules.engine import LayerAResult


@dataclass(frozen=True)
class Precheck:
    """Layer A's result and a cached Layer B verdict, if any."""

    layer_a: LayerAResult
    cached: Classification | None


async def precheck(deps: GuardrailDeps, *, content_type: str, title: str, text: str) -> Precheck:
    """Never calls a model: rules (< 1 ms) and a cache lookup."""
    out = Violations()
    if content_type not in ("problem", "solution", "debate"):
        out.add("content_type", "must be PROBLEM, SOLUTION or DEBATE")
    check_text(title, out, "title", 500)
    check_required_text(text, out, "text", 1, 20000)
    out.raise_if_any()
    layer_a = deps.rules.evaluate(f"{title}\n{text}".strip())
    item = ContentItem(ContentType(content_type), title, text)
    cached = await deps.cache.get(item, deps.classifier_name)
    return Precheck(layer_a, cached)
