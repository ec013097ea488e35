"""The guardrail service's composition: dependencies, servicer and per-RPC policies."""

from __future__ import annotations

import grpc
from betterworld.guardrail.v1 import guardrail_pb2, guardrail_pb2_grpc

from services.core.pagination import CursorCodec
from services.core.policy import Access, MethodPolicy
from services.core.runtime import Runtime
from services.core.server import ServiceDefinition
from services.core.settings import Settings
from services.guardrail.apply import decision_applier
from services.guardrail.budget import DailyBudget
from services.guardrail.cache import ResultCache
from services.guardrail.deps import GuardrailDeps
from services.guardrail.rules.engine import RuleSet
from services.guardrail.servicer import GuardrailServicer

_SERVICE = "/betterworld.guardrail.v1.GuardrailService/"
_OPERATOR = MethodPolicy(Access.OPERATOR)
POLICIES: dict[str, MethodPolicy] = {
    _SERVICE + "PrecheckContent": MethodPolicy(Access.AGENT),
    _SERVICE + "GetEvaluation": MethodPolicy(Access.PUBLIC),
    _SERVICE + "ListFlagged": _OPERATOR,
    _SERVICE + "GetFlagged": _OPERATOR,
    _SERVICE + "ClaimFlagged": _OPERATOR,
    _SERVICE + "ReviewFlagged": _OPERATOR,
    _SERVICE + "GetGuardrailStats": _OPERATOR,
}
_SERVICES = guardrail_pb2.DESCRIPTOR.services_by_name
LOCAL_CLASSIFIER_NAME = "local-minilm-exemplars-v1+intent"


def active_classifier_name(settings: Settings) -> str:
    """The name under which the worker's classifier caches verdicts."""
    return settings.guardrail_model if settings.anthropic_api_key else LOCAL_CLASSIFIER_NAME


def _register(server: grpc.aio.Server, runtime: Runtime) -> None:
    settings = runtime.settings
    channel = runtime.content_channel()
    deps = GuardrailDeps(
        engine=runtime.engine,
        rules=RuleSet.load(),
        cache=ResultCache(runtime.redis, ttl_seconds=settings.guardrail_cache_ttl_seconds),
        classifier_name=active_classifier_name(settings),
        queue=runtime.evaluation_queue.queue,
        budget=DailyBudget(runtime.redis, limit_cents=settings.guardrail_daily_budget_cents),
        cursors=CursorCodec(settings.cursor_secret.get_secret_value().encode()),
        apply=decision_applier(channel, settings.internal_service_token.get_secret_value()),
    )
    guardrail_pb2_grpc.add_GuardrailServiceServicer_to_server(GuardrailServicer(deps), server)


DEFINITION = ServiceDefinition(
    name="guardrail",
    grpc_services=tuple(s.full_name for s in _SERVICES.values()),
    policies=POLICIES,
    register=_register,
    descriptors=tuple(_SERVICES.values()),
)
