"""The 12 forbidden harm categories, in the order every layer reports them.

Layer A's data file, the local classifier's exemplars and the model prompt each cover exactly
these (their loaders and tests check it).
"""

from __future__ import annotations

HARM_CATEGORIES: tuple[str, ...] = (
    "surveillance",
    "weapons",
    "political_manipulation",
    "financial_exploitation",
    "discrimination",
    "pseudo_science",
    "privacy_violation",
    "deepfakes",
    "social_engineering",
    "market_manipulation",
    "labor_exploitation",
    "hate_speech",
)
