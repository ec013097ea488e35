"""Queues: the worker's backlog, throughput, job durations, the guardrail and the sweeps."""

from __future__ import annotations

from grafana_foundation_sdk.builders.dashboard import Dashboard

from tooling.dashboards.panels import RATE, graph, new_dashboard, row, single


def dashboard() -> Dashboard:
    """The queues dashboard."""
    return (
        new_dashboard(
            "betterworld-queues",
            "BetterWorld / Queues",
            "The worker: queue backlogs, jobs and periodic rounds, the guardrail pipeline, "
            "deferral and the sweeps.",
        )
        .with_row(row("Backlog"))
        .with_panel(
            single(
                "Jobs waiting",
                "Waiting and delayed jobs over all queues (QueueBacklog: 500 in one queue).",
                'sum(bullmq_queue_size{state=~"waiting|delayed"})',
                warn_at=500,
            )
        )
        .with_panel(
            single(
                "Failed attempts (1 h)",
                "Job attempts that failed in the last hour, all queues.",
                "sum(increase(bullmq_jobs_failed_total[1h]))",
                warn_at=1,
            )
        )
        .with_panel(
            single(
                "Failed rounds (1 h)",
                "Periodic rounds and jobs that ended in an error in the last hour.",
                'sum(increase(job_duration_seconds_count{outcome="failed"}[1h]))',
                warn_at=1,
            )
        )
        .with_panel(
            single(
                "Worker deferring",
                "1 while the worker holds jobs back because the machine is busy with requests.",
                "max(worker_deferring)",
            )
        )
        .with_panel(
            graph(
                "Backlog by queue",
                "Waiting and delayed jobs per queue; QueueBacklog fires above 500 for 15 m.",
                [
                    (
                        'sum by (queue) (bullmq_queue_size{state=~"waiting|delayed"})',
                        "{{queue}}",
                    )
                ],
                warn_at=500,
            )
        )
        .with_panel(
            graph(
                "Jobs by state",
                "Every state of every queue (completed and failed ones are kept for a while).",
                [("sum by (queue, state) (bullmq_queue_size)", "{{queue}} {{state}}")],
            )
        )
        .with_row(row("Throughput and duration"))
        .with_panel(
            graph(
                "Jobs completed and failed per second",
                "Per queue; a failed attempt is retried until its last one.",
                [
                    (
                        f"sum by (queue) (rate(bullmq_jobs_completed_total[{RATE}]))",
                        "{{queue}} completed",
                    ),
                    (
                        f"sum by (queue) (rate(bullmq_jobs_failed_total[{RATE}]))",
                        "{{queue}} failed",
                    ),
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Job and round duration, p95",
                "95th percentile of one job attempt (bullmq queues) or one periodic round.",
                [
                    (
                        "histogram_quantile(0.95, sum by (le, queue) "
                        f"(rate(job_duration_seconds_bucket[{RATE}])))",
                        "{{queue}}",
                    )
                ],
                unit="s",
            )
        )
        .with_panel(
            graph(
                "Jobs and rounds per second by outcome",
                "How often each queue's jobs and each periodic task's rounds end, by outcome.",
                [
                    (
                        f"sum by (queue, outcome) (rate(job_duration_seconds_count[{RATE}]))",
                        "{{queue}} {{outcome}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Deferral wait, p95",
                "How long jobs waited for the machine to calm down before they ran.",
                [
                    (
                        "histogram_quantile(0.95, sum by (le, queue) "
                        f"(rate(worker_deferred_seconds_bucket[{RATE}])))",
                        "{{queue}}",
                    )
                ],
                unit="s",
            )
        )
        .with_row(row("Guardrail"))
        .with_panel(
            graph(
                "Evaluation time, p95",
                "Whole evaluations by decision and each layer (GuardrailSlow: 5 s).",
                [
                    (
                        "histogram_quantile(0.95, sum by (le, decision) "
                        f"(rate(guardrail_evaluation_duration_seconds_bucket[{RATE}])))",
                        "{{decision}}",
                    ),
                    (
                        "histogram_quantile(0.95, sum by (le, layer) "
                        f"(rate(guardrail_layer_duration_seconds_bucket[{RATE}])))",
                        "layer {{layer}}",
                    ),
                ],
                unit="s",
                warn_at=5,
            )
        )
        .with_panel(
            graph(
                "Decisions per second",
                "Guardrail decisions by decision and content kind.",
                [
                    (
                        f"sum by (decision, kind) (rate(guardrail_decisions_total[{RATE}]))",
                        "{{kind}} {{decision}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Classifier cache",
                "Result cache lookups by result, and model budget checks skipped for Redis.",
                [
                    (
                        f"sum by (result) (rate(guardrail_cache_lookups_total[{RATE}]))",
                        "{{result}}",
                    ),
                    (
                        f"sum by (budget) (rate(model_budget_unavailable_total[{RATE}]))",
                        "budget unavailable: {{budget}}",
                    ),
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Decisions per batch, p50 and p95",
                "Decisions sent to the content service in one call.",
                [
                    (
                        f"histogram_quantile({q}, sum by (le) "
                        f"(rate(guardrail_decision_batch_size_bucket[{RATE}])))",
                        f"p{label}",
                    )
                    for q, label in (("0.5", "50"), ("0.95", "95"))
                ],
            )
        )
        .with_row(row("Sweeps and embeddings"))
        .with_panel(
            graph(
                "Evaluations queued again (1 h)",
                "Lost evaluations the sweeps queued again (StuckPendingSwept).",
                [
                    ("sum(increase(content_evaluations_requeued_total[1h]))", "content"),
                    ("sum(increase(mission_evaluations_requeued_total[1h]))", "missions"),
                ],
            )
        )
        .with_panel(
            graph(
                "Expired and removed (1 h)",
                "Claims and missions expired, and orphan evidence files removed.",
                [
                    ("sum by (what) (increase(mission_expired_total[1h]))", "{{what}} expired"),
                    (
                        "sum(increase(evidence_orphan_files_removed_total[1h]))",
                        "orphan files removed",
                    ),
                ],
            )
        )
        .with_panel(
            graph(
                "Search vectors stored per second",
                "By item kind and source (a queued job or the sweep's backfill).",
                [
                    (
                        f"sum by (kind, source) (rate(content_embeddings_stored_total[{RATE}]))",
                        "{{kind}} {{source}}",
                    )
                ],
                unit="ops",
            )
        )
        .with_panel(
            graph(
                "Hosted embedding tokens per second",
                "Tokens a hosted embedding provider billed (only with one configured).",
                [
                    (
                        f"sum by (provider, model) (rate(embedding_tokens_total[{RATE}]))",
                        "{{provider}} {{model}}",
                    )
                ],
            )
        )
    )
