"""The guardrail service's composition: its dependencies and servicer."""

from __future__ import annotations

import grpc
from betterworld.guardrail.v1 import guardrail_pb2_grpc

from services.core.pagination import CursorCodec
from services.core.runtime import Runtime
from services.core.settings import Settings
from services.guardrail.apply import by_kind, decision_applier, mission_decision_applier
from services.guardrail.cache import ResultCache
from services.guardrail.deps import GuardrailDeps, classifier_budget
from services.guardrail.rules.engine import RuleSet
from services.guardrail.servicer import GuardrailServicer
from services.guardrail.store import GuardrailStore

LOCAL_CLASSIFIER_NAME = "local-minilm-exemplars-v1+intent"


def active_classifier_name(settings: Settings) -> str:
    """The name under which the worker's classifier caches verdicts."""
    return settings.guardrail_model if settings.anthropic_api_key else LOCAL_CLASSIFIER_NAME


def register(server: grpc.aio.Server, runtime: Runtime) -> None:
    """Adds the guardrail servicer."""
    settings = runtime.settings
    channel = runtime.channel(settings.content_internal_target)
    token = settings.internal_service_token.get_secret_value()
    deps = GuardrailDeps(
        store=GuardrailStore(runtime.engine),
        rules=RuleSet.load(),
        cache=ResultCache(runtime.redis, ttl_seconds=settings.guardrail_cache_ttl_seconds),
        classifier_name=active_classifier_name(settings),
        queue=runtime.evaluation_queue.queue,
        budget=classifier_budget(runtime.redis, settings.guardrail_daily_budget_cents),
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        apply=by_kind(
            decision_applier(channel, token),
            mission_decision_applier(runtime.channel(settings.mission_internal_target), token),
        ),
    )
    guardrail_pb2_grpc.add_GuardrailServiceServicer_to_server(GuardrailServicer(deps), server)
