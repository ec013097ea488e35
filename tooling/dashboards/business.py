"""Business: the platform's figures (computed by the worker every minute) and the ledger."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from tooling.dashboards.panels import RATE, graph, new_dashboard, row, single

# The worker computes these from the services' tables; max() keeps one series if several
# workers export them.
FIGURES = (
    ("Active agents (24 h)", "betterworld_active_agents_24h", "short", "Agents that checked in."),
    ("Problems today", "betterworld_problems_today", "short", "Reported since 00:00 UTC."),
    (
        "Approval rate (24 h)",
        "betterworld_approval_rate_24h",
        "percentunit",
        "Share of guardrail evaluations that approved the content.",
    ),
    (
        "Missions completed this week",
        "betterworld_missions_completed_week",
        "short",
        "Completed claims since Monday 00:00 UTC.",
    ),
    (
        "Tokens distributed this week",
        "betterworld_tokens_distributed_week",
        "short",
        "ImpactTokens earned by humans since Monday 00:00 UTC.",
    ),
)


def dashboard() -> Dashboard:
    """The business dashboard."""
    board = new_dashboard(
        "betterworld-business",
        "BetterWorld / Business",
        "The plan's business figures (refreshed by the worker every minute), content "
        "decisions, activity and the ImpactToken ledger's health.",
    ).with_row(row("Figures"))
    for title, metric, unit, description in FIGURES:
        board = board.with_panel(single(title, description, f"max({metric})", unit=unit, width=4))
    board = board.with_panel(
        single(
            "Ledger drift",
            "Balances that differ from their ledger rows (LedgerDrift pages at once).",
            "max(ledger_drift_balances)",
            warn_at=1,
            width=4,
        )
    )
    return (
        board.with_row(row("Over time"))
        .with_panel(
            graph(
                "Agents and problems",
                "Active agents in the last 24 h and problems reported today.",
                [
                    ("max(betterworld_active_agents_24h)", "active agents (24 h)"),
                    ("max(betterworld_problems_today)", "problems today"),
                ],
            )
        )
        .with_panel(
            graph(
                "Missions and tokens this week",
                "Completed missions and ImpactTokens paid since Monday.",
                [
                    ("max(betterworld_missions_completed_week)", "missions completed"),
                    ("max(betterworld_tokens_distributed_week)", "tokens distributed"),
                ],
            )
        )
        .with_panel(
            graph(
                "Approval rate (24 h)",
                "Share of the guardrail's evaluations of the last 24 h that approved.",
                [("max(betterworld_approval_rate_24h)", "approval rate")],
                unit="percentunit",
            )
        )
        .with_panel(
            graph(
                "Decisions per hour by kind",
                "Guardrail decisions by content kind and decision.",
                [
                    (
                        "sum by (kind, decision) (increase(guardrail_decisions_total[1h]))",
                        "{{kind}} {{decision}}",
                    )
                ],
            )
        )
        .with_panel(
            graph(
                "Activity events per second",
                "Events written to the activity feed, by type.",
                [
                    (
                        f"sum by (type) (rate(activity_events_published_total[{RATE}]))",
                        "{{type}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Ledger drift",
                "Drifting balances and the tokens they are off by (never corrected "
                "automatically: see the LedgerDrift runbook).",
                [
                    ("max(ledger_drift_balances)", "balances"),
                    ("max(ledger_drift_tokens)", "tokens"),
                ],
                warn_at=1,
            )
        )
        .with_panel(
            graph(
                "Figure refreshes",
                "The worker's business-gauges rounds by outcome (failed: the figures are stale).",
                [
                    (
                        "sum by (outcome) (increase(job_duration_seconds_count"
                        '{queue="business-gauges"}[1h]))',
                        "{{outcome}}",
                    )
                ],
            )
        )
    )
