"""What a Claude call costs, in US cents, from the token counts the API reports."""

from __future__ import annotations

from dataclasses import dataclass

from anthropic.types import Usage

# Cache writes (5-minute TTL) and cache reads are priced relative to base input, as on every
# current model: 1.25x and 0.1x.
_CACHE_WRITE_FACTOR = 1.25
_CACHE_READ_FACTOR = 0.1


@dataclass(frozen=True)
class ModelPrice:
    """US dollars per million tokens, with an optional higher band for long prompts."""

    input_per_mtok: float
    output_per_mtok: float
    long_prompt_tokens: int | None = None
    """Prompts above this many input tokens (all kinds) are billed at the long-prompt rates."""
    long_input_per_mtok: float = 0.0
    long_output_per_mtok: float = 0.0


# Source: Anthropic's model and pricing pages (platform.claude.com/docs, models overview and each
# model's page) as of November 2026. Standard tier, no batch discount. Keys are API model ids;
# dated snapshot ids resolve through their alias prefix (see price_for).
PRICES: dict[str, ModelPrice] = {
    "claude-haiku-5-5": ModelPrice(0.10, 0.50, 100_000, 0.50, 2.50),
    "claude-haiku-4-5": ModelPrice(1.00, 5.00),
    "claude-sonnet-5-5": ModelPrice(2.00, 10.00),
    "claude-sonnet-5": ModelPrice(2.00, 10.00),
    "claude-sonnet-4-5": ModelPrice(3.00, 15.00),
    "claude-opus-5-5": ModelPrice(4.00, 20.00),
    "claude-opus-5": ModelPrice(5.00, 25.00),
}

UNKNOWN_MODEL_PRICE = ModelPrice(15.00, 75.00)
"""For a model not in the table: the highest Claude list price, so the budget over- rather than
under-counts until the table is updated."""


def price_for(model: str) -> ModelPrice:
    """The entry for a model id or a dated snapshot of one (`claude-haiku-4-5-20251001`)."""
    if model in PRICES:
        return PRICES[model]
    # A snapshot is the alias plus "-YYYYMMDD"; anything else (`claude-sonnet-5-1`) is another
    # model and must not borrow a neighbour's price.
    alias, _, date = model.rpartition("-")
    if alias in PRICES and len(date) == 8 and date.isdigit():
        return PRICES[alias]
    return UNKNOWN_MODEL_PRICE


def cost_cents(model: str, usage: Usage) -> float:
    """The cost of one response in US cents (fractions kept: a Haiku call is far below a cent)."""
    price = price_for(model)
    cache_write = usage.cache_creation_input_tokens or 0
    cache_read = usage.cache_read_input_tokens or 0
    prompt_tokens = usage.input_tokens + cache_write + cache_read
    input_rate, output_rate = price.input_per_mtok, price.output_per_mtok
    if price.long_prompt_tokens is not None and prompt_tokens > price.long_prompt_tokens:
        input_rate, output_rate = price.long_input_per_mtok, price.long_output_per_mtok
    dollars = (
        usage.input_tokens * input_rate
        + cache_write * input_rate * _CACHE_WRITE_FACTOR
        + cache_read * input_rate * _CACHE_READ_FACTOR
        + usage.output_tokens * output_rate
    ) / 1_000_000
    return dollars * 100
