"""Layer B with Claude: one forced `record_evaluation` tool call per item, via the anthropic SDK.

Structured output comes from a single tool that the request forces with `tool_choice`; thinking is
explicitly disabled because the API refuses forced tool use while thinking is on (Haiku 5.5
thinks adaptively by default). No sampling parameters are sent: Haiku 5.5 rejects them. Models
that refuse forced tool use altogether (Sonnet 5.5, Opus 5.5, Fable 5.1) answer 400 here, a
non-retryable error: this classifier is for the Haiku models.

Retries happen twice: the SDK retries 408/409/429/5xx and connection errors itself
(`max_retries`, honouring retry-after), and the job queue retries whatever this raises as
retryable. Keep SDK retries small so a job attempt stays well inside its time budget.
"""

from __future__ import annotations

import time

from anthropic import (
    AnthropicError,
    APIConnectionError,
    APIResponseValidationError,
    APIStatusError,
    APITimeoutError,
    AsyncAnthropic,
    CredentialsError,
)
from anthropic.types import (
    Message,
    ThinkingConfigDisabledParam,
    ToolChoiceToolParam,
    UserMessageParam,
)

from services.core.budget import DailyBudget
from services.core.logging import get_logger
from services.guardrail.classifier.base import Classification, ClassifierError, ContentItem
from services.guardrail.classifier.claude_parsing import (
    ClaudeOutputError,
    classification_from_message,
)
from services.guardrail.classifier.claude_pricing import cost_cents
from services.guardrail.classifier.claude_prompt import (
    SYSTEM_PROMPT,
    TOOL_NAME,
    evaluation_tool,
    user_message,
)

log = get_logger(__name__)

DEFAULT_MODEL = "claude-haiku-5-5"
"""The current Haiku (released 2026-10-07); `claude-haiku-4-5` works with the same request."""
MAX_OUTPUT_TOKENS = 1024
"""The tool call needs ~150 tokens; the headroom only matters if the model rambles in reasoning."""

_FORCED_TOOL: ToolChoiceToolParam = {
    "type": "tool",
    "name": TOOL_NAME,
    "disable_parallel_tool_use": True,
}
_NO_THINKING: ThinkingConfigDisabledParam = {"type": "disabled"}
# Statuses worth another attempt later: request timeout, conflict/lock, rate limit, server side.
_RETRYABLE_STATUSES = frozenset({408, 409, 429})


def create_anthropic_client(
    *,
    api_key: str,
    base_url: str | None = None,
    timeout_seconds: float = 20.0,
    max_retries: int = 2,
) -> AsyncAnthropic:
    """The one SDK client a process shares; base_url None means the public API (or the SDK's
    ANTHROPIC_BASE_URL environment variable)."""
    return AsyncAnthropic(
        api_key=api_key, base_url=base_url, timeout=timeout_seconds, max_retries=max_retries
    )


def classifier_error(exc: AnthropicError) -> ClassifierError:
    """Maps an SDK error to a ClassifierError: transient failures are retryable, requests the API
    will refuse again (bad request, auth, permission, unknown model) are not."""
    if isinstance(exc, APITimeoutError):
        return ClassifierError("anthropic API timed out", retryable=True)
    if isinstance(exc, APIConnectionError):
        return ClassifierError(f"anthropic API unreachable: {exc.message}", retryable=True)
    if isinstance(exc, APIStatusError):
        status = exc.status_code
        retryable = status in _RETRYABLE_STATUSES or status >= 500
        detail = exc.api_message or ""
        return ClassifierError(
            f"anthropic API {status} {exc.type or 'error'}: {detail[:200]} "
            f"(request-id {exc.request_id or '-'})",
            retryable=retryable,
        )
    if isinstance(exc, APIResponseValidationError):
        return ClassifierError("anthropic API response did not parse", retryable=True)
    if isinstance(exc, CredentialsError):
        return ClassifierError(f"anthropic credentials: {exc}", retryable=False)
    return ClassifierError(f"anthropic SDK error: {type(exc).__name__}", retryable=True)


class ClaudeClassifier:
    """Classifies with a Claude model; with a budget, refuses when it is spent and records spend.

    Safe to share across concurrent jobs: the SDK client pools connections and holds no
    per-request state.
    """

    def __init__(
        self,
        client: AsyncAnthropic,
        *,
        model: str = DEFAULT_MODEL,
        budget: DailyBudget | None = None,
        max_output_tokens: int = MAX_OUTPUT_TOKENS,
    ) -> None:
        self.name = model
        self._client = client
        self._budget = budget
        self._max_output_tokens = max_output_tokens

    async def classify(self, item: ContentItem) -> Classification:
        """The verdict. Raises BudgetExhausted (not retryable) when today's budget is spent,
        ClaudeOutputError (retryable) on malformed output, ClassifierError on API failures."""
        if self._budget is not None:
            await self._budget.ensure_available()
        turn: UserMessageParam = {"role": "user", "content": user_message(item)}
        started = time.perf_counter()
        try:
            message = await self._client.messages.create(
                model=self.name,
                max_tokens=self._max_output_tokens,
                system=SYSTEM_PROMPT,
                messages=[turn],
                tools=[evaluation_tool(item.content_type)],
                tool_choice=_FORCED_TOOL,
                thinking=_NO_THINKING,
            )
        except AnthropicError as exc:
            error = classifier_error(exc)
            log.warning(
                "claude_classify_failed",
                model=self.name,
                retryable=error.retryable,
                error=str(error),
                seconds=round(time.perf_counter() - started, 3),
            )
            raise error from exc
        if not isinstance(message, Message):
            # A 200 whose body is not JSON (a proxy's error page) comes back as a plain string.
            raise ClaudeOutputError(f"response was not a message ({type(message).__name__})")
        model = message.model if isinstance(message.model, str) and message.model else self.name
        cents = await self._account(message, model)
        log.info(
            "claude_classified",
            model=model,
            stop_reason=message.stop_reason,
            cost_cents=round(cents, 5),
            seconds=round(time.perf_counter() - started, 3),
        )
        return classification_from_message(
            message, item.content_type, model=model, cost_cents=cents
        )

    async def _account(self, message: Message, model: str) -> float:
        """What the response cost, recorded against the budget whether or not it is usable."""
        usage = getattr(message, "usage", None)
        if usage is None:  # never from the real API; count nothing rather than crash
            log.warning("claude_usage_missing", model=model)
            return 0.0
        cents = cost_cents(model, usage)
        if self._budget is not None:
            await self._budget.record(cents)
        return cents

    async def aclose(self) -> None:
        """Closes the SDK client's connection pool."""
        await self._client.close()
