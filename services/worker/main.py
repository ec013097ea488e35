"""`betterworld worker`: the worker process's composition root and lifecycle."""

from __future__ import annotations

import asyncio
import os
import signal
from concurrent.futures import Executor
from dataclasses import dataclass
from datetime import timedelta

import grpc

from services.content.service import build_deps as content_deps
from services.core.idle import idle_executor, make_process_idle
from services.core.logging import get_logger
from services.core.metrics import start_metrics_endpoint
from services.core.queues import EMBEDDING_QUEUE, GUARDRAIL_QUEUE, EmbeddingQueue
from services.core.runtime import Runtime, build_runtime, internal_channel
from services.core.settings import Settings
from services.guardrail.apply import DecisionBatcher
from services.guardrail.cache import ResultCache
from services.guardrail.classifier.base import Classifier
from services.guardrail.decision import Thresholds
from services.guardrail.pipeline import Pipeline
from services.guardrail.rules.engine import RuleSet
from services.worker.deferral import Deferral, LoadWatch
from services.worker.embeddings import EmbeddingWorker
from services.worker.guardrail import GuardrailWorker

log = get_logger(__name__)


def build_classifier(settings: Settings, runtime: Runtime) -> Classifier:
    """Claude when ANTHROPIC_API_KEY is set, else the local exemplar classifier."""
    if settings.anthropic_api_key is not None:
        from services.guardrail.budget import DailyBudget
        from services.guardrail.classifier.claude import ClaudeClassifier, create_anthropic_client

        client = create_anthropic_client(
            api_key=settings.anthropic_api_key.get_secret_value(),
            base_url=settings.anthropic_base_url,
            timeout_seconds=settings.guardrail_timeout_seconds,
            max_retries=settings.guardrail_max_retries,
        )
        budget = DailyBudget(runtime.redis, limit_cents=settings.guardrail_daily_budget_cents)
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


@dataclass
class Consumers:
    """The worker process's queue consumers, started and stopped together."""

    guardrail: GuardrailWorker
    embeddings: EmbeddingWorker
    embedding_queue: EmbeddingQueue
    item_executor: Executor
    decisions: DecisionBatcher
    load: LoadWatch | None = None

    def start(self) -> None:
        """Starts consuming both queues (and the guardrail worker's sweep, and the load watch
        that defers jobs while the machine is busy)."""
        if self.load is not None:
            self.load.start()
        self.guardrail.start()
        self.embeddings.start()

    async def stop(self, *, force: bool = False) -> None:
        """Stops both; running jobs finish unless `force` (which abandons them, as a crash)."""
        if self.load is not None:
            await self.load.stop()
        await self.guardrail.stop(force=force)
        await self.decisions.aclose()
        await self.embeddings.stop(force=force)
        await self.embedding_queue.close()
        self.item_executor.shutdown(wait=not force)


async def build_worker(
    settings: Settings, runtime: Runtime, classifier: Classifier | None = None
) -> tuple[Consumers, grpc.aio.Channel]:
    """The consumers and their channel to the content service (caller closes both)."""
    channel = internal_channel(settings.content_internal_target)
    if classifier is None:
        # Loading exemplar embeddings takes seconds of CPU: off the event loop.
        classifier = await asyncio.to_thread(build_classifier, settings, runtime)
    decisions = DecisionBatcher(
        channel,
        settings.internal_service_token.get_secret_value(),
        linger_seconds=settings.guardrail_decision_batch_seconds,
    )
    pipeline = Pipeline(
        engine=runtime.engine,
        rules=RuleSet.load(),
        classifier=classifier,
        cache=ResultCache(runtime.redis, ttl_seconds=settings.guardrail_cache_ttl_seconds),
        thresholds=thresholds_of(settings),
        apply=decisions.apply,
    )
    # Search vectors may be late; the CPU they take must not slow requests or decisions.
    item_executor = idle_executor(settings.embedding_concurrency, name="embed")
    content = content_deps(runtime, item_executor=item_executor)
    embedding_queue = EmbeddingQueue(settings.redis_url)
    load = load_watch(settings)
    guardrail = GuardrailWorker(
        pipeline,
        redis_url=settings.redis_url,
        concurrency=settings.worker_concurrency,
        lock_seconds=settings.worker_lock_seconds,
        content=content,
        embeddings=embedding_queue,
        sweep_interval=settings.sweep_interval_seconds,
        pending_after=timedelta(seconds=settings.sweep_pending_after_seconds),
        deferral=Deferral(
            load, queue=GUARDRAIL_QUEUE, max_defer_seconds=settings.worker_defer_seconds
        ),
    )
    embeddings = EmbeddingWorker(
        content,
        redis_url=settings.redis_url,
        concurrency=settings.embedding_concurrency,
        lock_seconds=settings.worker_lock_seconds,
        deferral=Deferral(
            load, queue=EMBEDDING_QUEUE, max_defer_seconds=settings.worker_defer_seconds
        ),
    )
    consumers = Consumers(guardrail, embeddings, embedding_queue, item_executor, decisions, load)
    return consumers, channel


def load_watch(settings: Settings) -> LoadWatch | None:
    """The machine-load watch behind job deferral; None when WORKER_DEFER_SECONDS is 0 or
    the load cannot be read here (not Linux)."""
    if settings.worker_defer_seconds <= 0:
        return None
    watch = LoadWatch(settings.worker_defer_above)
    if not watch.available:
        log.info("worker_defer_unavailable", reason="no /proc/stat")
        return None
    return watch


def lower_priority(settings: Settings) -> str:
    """Background work; requests come first. Returns the policy applied."""
    if settings.worker_idle_priority and make_process_idle():
        return "idle"
    if settings.worker_nice:
        os.nice(settings.worker_nice)
        return f"nice {settings.worker_nice}"
    return "normal"


async def run_worker(settings: Settings) -> int:
    """Consumes until SIGTERM/SIGINT, then lets running jobs finish and closes everything."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    lower_priority(settings)
    runtime = build_runtime(settings)
    worker, channel = await build_worker(settings, runtime)
    metrics = (
        start_metrics_endpoint(settings.host, settings.metrics_port_worker)
        if settings.metrics_port_worker
        else None
    )
    worker.start()
    log.info("worker_started", concurrency=settings.worker_concurrency)
    await stop.wait()
    log.info("worker_stopping")
    await worker.stop()
    await channel.close(None)
    if metrics is not None:
        metrics.close()
    await runtime.close()
    return 0
