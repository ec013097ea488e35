"""The guardrail's job consumer in the worker: evaluates queued content, dead-letters the
hopeless jobs; and the factory the worker builds it with."""

from __future__ import annotations

import asyncio
from dataclasses import replace

from bullmq import Job, Worker

from services.core.deferral import Deferral
from services.core.error_tracking import report_job_crash
from services.core.jobs import (
    JOBS_COMPLETED,
    JOBS_FAILED,
    JobConsumer,
    WorkerResources,
    publish_queue_sizes,
    timed_job,
)
from services.core.logging import get_logger
from services.core.queues import GUARDRAIL_JOB_OPTIONS, GUARDRAIL_QUEUE, EvaluationJob
from services.core.runtime import Runtime
from services.core.settings import Settings
from services.guardrail.apply import (
    AuthorStanding,
    DecisionBatcher,
    by_kind,
    mission_decision_applier,
)
from services.guardrail.cache import ResultCache
from services.guardrail.classifier.base import Classifier, ClassifierError
from services.guardrail.decision import Thresholds
from services.guardrail.deps import classifier_budget
from services.guardrail.pipeline import Pipeline
from services.guardrail.rules.engine import RuleSet
from services.guardrail.store import GuardrailStore

log = get_logger(__name__)
_GAUGE_INTERVAL_SECONDS = 5.0


class GuardrailWorker:
    """Runs the guardrail pipeline on the queue with bounded concurrency."""

    def __init__(
        self,
        pipeline: Pipeline,
        *,
        redis_url: str,
        concurrency: int,
        lock_seconds: float = 30.0,
        standing: AuthorStanding,
        decisions: DecisionBatcher | None = None,
        deferral: Deferral | None = None,
    ) -> None:
        self._pipeline = pipeline
        self._redis_url = redis_url
        self._concurrency = concurrency
        self._lock_ms = int(lock_seconds * 1000)
        self._standing = standing
        self._decisions = decisions
        self._deferral = deferral or Deferral(None, queue=GUARDRAIL_QUEUE, max_defer_seconds=0)
        self._worker: Worker | None = None
        self._gauges: asyncio.Task[None] | None = None

    async def process(self, job: Job, token: str) -> dict[str, str]:
        """One attempt (once the deferral admits it); the last failing attempt dead-letters the
        item as FLAGGED instead."""
        async with self._deferral.admit(job.timestamp):
            with timed_job(GUARDRAIL_QUEUE):
                return await self._attempt(job)

    async def _attempt(self, job: Job) -> dict[str, str]:
        data = EvaluationJob.from_data(job.data)
        trust = await self._standing.approved_items(
            data.author_agent_id, at_most=self._pipeline.thresholds.new_account_min_approved
        )
        data = replace(data, author_approved_items=trust)
        attempts = int(job.opts.get("attempts", GUARDRAIL_JOB_OPTIONS["attempts"]))
        attempt = job.attemptsMade + 1
        try:
            outcome = await self._pipeline.evaluate(data, attempt=attempt)
        except Exception as exc:
            JOBS_FAILED.labels(GUARDRAIL_QUEUE).inc()
            retryable = not (isinstance(exc, ClassifierError) and not exc.retryable)
            if retryable and attempt < attempts:
                log.warning("evaluation_attempt_failed", attempt=attempt, error=type(exc).__name__)
                raise
            log.error("evaluation_dead_lettered", attempts=attempt, error=type(exc).__name__)
            report_job_crash(exc, job="evaluate", queue=GUARDRAIL_QUEUE)
            await self._pipeline.dead_letter(data, type(exc).__name__, attempt)
            JOBS_COMPLETED.labels(GUARDRAIL_QUEUE).inc()
            return {"decision": "FLAGGED", "deadLettered": "true"}
        JOBS_COMPLETED.labels(GUARDRAIL_QUEUE).inc()
        return {"decision": outcome.verdict.status}

    async def _publish_gauges(self) -> None:
        from bullmq import Queue

        queue = Queue(GUARDRAIL_QUEUE, {"connection": self._redis_url})
        try:
            while True:
                try:
                    await publish_queue_sizes(queue)
                except Exception:  # a failed round must not stop future ones
                    log.warning("queue_gauges_failed", queue=GUARDRAIL_QUEUE)
                await asyncio.sleep(_GAUGE_INTERVAL_SECONDS)
        finally:
            await queue.close()

    def start(self) -> None:
        """Starts consuming (bullmq runs its own loop task) and the queue gauges."""
        self._worker = Worker(
            GUARDRAIL_QUEUE,
            self.process,
            {
                "connection": self._redis_url,
                "concurrency": self._concurrency,
                # A crashed worker's jobs return to the queue once their lock lapses.
                "lockDuration": self._lock_ms,
                "stalledInterval": self._lock_ms,
            },
        )
        self._gauges = asyncio.create_task(self._publish_gauges(), name="guardrail-gauges")

    async def stop(self, *, force: bool = False) -> None:
        """Stops taking jobs and waits for the running ones (bullmq's close does).

        `force` abandons running jobs without finishing them, as a crash would; their locks
        lapse and another worker takes them over.
        """
        if self._gauges is not None:
            self._gauges.cancel()
            await asyncio.gather(self._gauges, return_exceptions=True)
        self._deferral.open()  # jobs already taken run now instead of waiting out the load
        if self._worker is not None:
            await self._worker.close(force=force)
        if self._decisions is not None:
            await self._decisions.aclose()
        close = getattr(self._pipeline.classifier, "aclose", None)
        if close is not None:
            await close()


def build_classifier(settings: Settings, runtime: Runtime) -> Classifier:
    """Claude when ANTHROPIC_API_KEY is set, else the local classifier."""
    if settings.anthropic_api_key is not None:
        from services.guardrail.classifier.claude import ClaudeClassifier, create_anthropic_client

        client = create_anthropic_client(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            timeout_seconds=settings.guardrail_timeout_seconds,
            max_retries=settings.guardrail_max_retries,
        )
        budget = classifier_budget(runtime.redis, settings.guardrail_daily_budget_cents)
        return ClaudeClassifier(client, model=settings.guardrail_model, budget=budget)
    from services.guardrail.classifier.local import LocalClassifier

    classifier = LocalClassifier()
    classifier.load()
    return classifier


def thresholds_of(settings: Settings) -> Thresholds:
    """Decision thresholds from settings."""
    return Thresholds(
        approve=settings.guardrail_approve_threshold,
        flag=settings.guardrail_flag_threshold,
        new_account_days=settings.guardrail_new_account_days,
        new_account_min_approved=settings.guardrail_new_account_min_approved,
    )


async def consumers(resources: WorkerResources) -> list[JobConsumer]:
    """The evaluation consumer, its decisions sent to the content service in batches."""
    settings, runtime = resources.settings, resources.runtime
    classifier: Classifier | None = resources.provided.get("classifier")
    if classifier is None:
        # Loading the classifier takes seconds of CPU: off the event loop.
        classifier = await asyncio.to_thread(build_classifier, settings, runtime)
    token = settings.internal_service_token.get_secret_value()
    channel = runtime.channel(settings.content_internal_target)
    decisions = DecisionBatcher(
        channel, token, linger_seconds=settings.guardrail_decision_batch_seconds
    )
    pipeline = Pipeline(
        store=GuardrailStore(runtime.engine),
        rules=RuleSet.load(),
        classifier=classifier,
        cache=ResultCache(runtime.redis, ttl_seconds=settings.guardrail_cache_ttl_seconds),
        thresholds=thresholds_of(settings),
        apply=by_kind(
            decisions.apply,
            mission_decision_applier(runtime.channel(settings.mission_internal_target), token),
        ),
    )
    worker = GuardrailWorker(
        pipeline,
        redis_url=settings.redis_url,
        concurrency=settings.worker_concurrency,
        lock_seconds=settings.worker_lock_seconds,
        standing=AuthorStanding(channel, token),
        decisions=decisions,
        deferral=resources.deferral(GUARDRAIL_QUEUE),
    )
    return [worker]
