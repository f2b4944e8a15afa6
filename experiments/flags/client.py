"""The OpenFeature client the router evaluates its flags with.

Every evaluation is an OpenFeature evaluation: the client bound to a domain,
whatever provider is registered there, with every hook that is registered. The SDK's
machinery (merging four evaluation contexts, building hook contexts, running the
hook stages) costs more than the evaluation itself, whatever the provider does
(bench/bench_sessions.py prints it; figures in the README). When nothing can observe
that machinery — voxroute's own provider is the one registered and ready, no hook is
registered at the API, client or provider level, and the API, transaction and client
contexts are empty — the result of the SDK is by construction the provider's result,
so `RoutingFlagClient` asks the provider directly. Register a hook, set a global
context or another provider, and the next evaluation goes through the SDK.
"""

from __future__ import annotations

from openfeature import api
from openfeature.client import OpenFeatureClient
from openfeature.evaluation_context import EvaluationContext, get_evaluation_context
from openfeature.flag_evaluation import FlagEvaluationDetails, FlagType
from openfeature.provider import ProviderStatus
from openfeature.transaction_context import get_transaction_context

from ..router import StringResolver
from .provider import VoxrouteProvider


class RoutingFlagClient:
    """`get_string_details` with the semantics of `OpenFeatureClient`'s.

    `string_resolver()` decides once (per session) which path to take and
    returns the function that evaluates the session's flags.
    """

    def __init__(self, domain: str, *, direct_when_unobserved: bool = True) -> None:
        self.domain = domain
        self.client: OpenFeatureClient = api.get_client(domain)
        self.direct_when_unobserved = direct_when_unobserved

    def get_string_details(
        self,
        flag_key: str,
        default_value: str,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagEvaluationDetails[str]:
        context = evaluation_context or EvaluationContext()
        return self.string_resolver()(flag_key, default_value, context)

    def string_resolver(self) -> StringResolver:
        provider = self._unobserved_provider()
        if provider is None:
            return self.client.get_string_details
        compiled = provider.compiled

        def resolve(
            flag_key: str, default_value: str, context: EvaluationContext
        ) -> FlagEvaluationDetails[str]:
            result = compiled.resolve(
                flag_key, context.targeting_key, context.attributes, flag_type=FlagType.STRING
            )
            return FlagEvaluationDetails(
                flag_key,
                default_value if result.variant is None else result.value,
                result.variant,
                result.flag_metadata,
                result.reason,
                result.error_code,
                result.error_message,
            )

        return resolve

    def _unobserved_provider(self) -> VoxrouteProvider | None:
        """Voxroute's provider when the SDK would add nothing observable, else None."""
        if not self.direct_when_unobserved:
            return None
        client = self.client
        provider = client.provider
        if not isinstance(provider, VoxrouteProvider) or provider.get_provider_hooks():
            return None
        if api.get_hooks() or client.hooks or client.get_provider_status() != ProviderStatus.READY:
            return None
        if _empty(client.context) and _empty(get_evaluation_context()):
            return provider if _empty(get_transaction_context()) else None
        return None


def _empty(context: EvaluationContext) -> bool:
    return context.targeting_key is None and not context.attributes
