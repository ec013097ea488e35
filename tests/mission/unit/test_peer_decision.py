"""The peers' verdict and the reward rule: what decides, what goes to an operator, what pays."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.mission.evidence_model import (
    PEER_DECISIVE,
    VoteRecord,
    mission_reward,
    peer_decision,
)


def _vote(approve: bool, confidence: float) -> VoteRecord:
    return VoteRecord("e", "r", "m", "t", approve, confidence, "why", datetime.now(UTC))


def test_unanimous_confident_votes_decide_at_their_mean_confidence() -> None:
    decision = peer_decision([_vote(True, 0.9)] * 3)
    assert decision is not None and decision.approve and decision.confidence == 0.9
    rejected = peer_decision([_vote(False, 0.9), _vote(False, 0.8), _vote(True, 0.1)])
    assert rejected is not None and not rejected.approve


@pytest.mark.parametrize(
    "votes",
    [
        [(True, 0.9), (False, 0.9)],  # a tie
        [(True, 0.9), (False, 0.8), (True, 0.4)],  # split: +0.17
        [(True, 0.3), (True, 0.4), (True, 0.2)],  # unanimous but doubtful: +0.3
        [],
    ],
)
def test_ties_doubt_and_split_votes_go_to_an_operator(votes: list[tuple[bool, float]]) -> None:
    assert peer_decision([_vote(a, c) for a, c in votes]) is None


@given(st.lists(st.tuples(st.booleans(), st.floats(0, 1)), min_size=1, max_size=5))
def test_a_decision_is_never_weaker_than_the_threshold(votes: list[tuple[bool, float]]) -> None:
    decision = peer_decision([_vote(a, c) for a, c in votes])
    if decision is not None:
        assert PEER_DECISIVE <= decision.confidence <= 1


@pytest.mark.parametrize(
    ("reward", "confidence", "paid"),
    [(25, 0.9, 22), (25, 1.0, 25), (10, 0.8, 8), (1, 0.5, 1), (3, 0.1, 1), (100, 0.93, 93)],
)
def test_the_reward_is_floor_of_reward_times_confidence_at_least_one(
    reward: int, confidence: float, paid: int
) -> None:
    assert mission_reward(reward, confidence) == paid
