"""select_route: from a session's routing context to its pinned provider route.

The flag `voice-mode` (the catalog's `routing.mode`) decides `pipeline` or `s2s`;
then only the flags that this route needs are evaluated: stt and tts in a
pipeline, s2s otherwise, vad and turn detection in both. A flag that is missing,
disabled, in error, or names a provider that does not exist, is of the wrong
kind or is unavailable in the session's region falls back to the catalog
default of that kind; the fallback is returned with its reason, counted and
logged with the routing context.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from time import perf_counter
from typing import Any, Protocol

import orjson
from openfeature.evaluation_context import EvaluationContext
from openfeature.flag_evaluation import FlagEvaluationDetails, Reason

from .catalog import Catalog, Mode, ProviderKind
from .context import RouteContext
from .errors import NoRouteError
from .events import Assignment
from .flags.keys import (
    BUCKET_KEY_KEY,
    BUCKET_UNIT_KEY,
    FLAG_VERSION_KEY,
    SPLIT_ID_KEY,
    SPLIT_WEIGHTS_KEY,
)
from .telemetry import FLAG_EVALUATION_SECONDS, ROUTE_FALLBACKS, Children

logger = logging.getLogger("voxroute.router")

_PROVIDER_CACHE_LIMIT = 50_000
_ASSIGNMENT_CACHE_LIMIT = 4_096
_PER_SESSION_META = (SPLIT_ID_KEY, SPLIT_WEIGHTS_KEY, BUCKET_UNIT_KEY, BUCKET_KEY_KEY)
"""Metadata keys whose presence makes an assignment particular to its session."""
_NO_PARTS: dict[str, None] = dict.fromkeys(kind.value for kind in ProviderKind)
_MODES: dict[str, Mode] = {mode.value: mode for mode in Mode}
_PIPELINE = Mode.PIPELINE.value
_FALLBACKS = Children(ROUTE_FALLBACKS)


class FallbackReason(StrEnum):
    FLAG_NOT_FOUND = "flag_not_found"
    FLAG_DISABLED = "flag_disabled"
    FLAG_ERROR = "flag_error"
    NO_VARIANT = "no_variant"
    UNKNOWN_PROVIDER = "unknown_provider"
    WRONG_KIND = "wrong_kind"
    UNAVAILABLE_IN_REGION = "unavailable_in_region"


StringResolver = Callable[[str, str, EvaluationContext], FlagEvaluationDetails[str]]


class StringFlagClient(Protocol):
    """What the router needs of an OpenFeature client: once per session, the
    function that evaluates string flags (`RoutingFlagClient` fits; so does any
    object whose `string_resolver` returns an `OpenFeatureClient.get_string_details`)."""

    def string_resolver(self) -> StringResolver: ...


@dataclass(frozen=True, slots=True)
class Fallback:
    """One part of the route that the flags could not decide."""

    part: str
    flag_key: str
    reason: FallbackReason
    detail: str
    requested: str | None
    used: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "part": self.part,
            "flag_key": self.flag_key,
            "reason": str(self.reason),
            "detail": self.detail,
            "requested": self.requested,
            "used": self.used,
        }


@dataclass(frozen=True, slots=True)
class RoutingDecision:
    """The route (as its JSON-ready parts), every assignment and every fallback."""

    mode: Mode
    parts: Mapping[str, Mapping[str, Any] | None]
    assignments: tuple[Assignment, ...]
    fallbacks: tuple[Fallback, ...]

    def route_dict(self) -> dict[str, Any]:
        return {"mode": str(self.mode), **self.parts}


class Router:
    """Chooses routes from flags (through an OpenFeature client) and a catalog.

    Resolved provider configs (catalog entry + tenant override) are cached per
    tenant and provider, and so are the assignments of flags that are not splits
    (the same `Assignment` object for the same evaluation result and fallback);
    `invalidate()` clears the caches and is called whenever the flags or the
    catalog change.
    """

    def __init__(self, client: StringFlagClient, catalog: Catalog) -> None:
        self._client = client
        self._catalog = catalog
        self._providers: dict[tuple[str, str], Mapping[str, Any]] = {}
        self._assignments: dict[tuple[Any, ...], Assignment] = {}
        self._plans: dict[Mode, tuple[tuple[ProviderKind, str, str], ...]] = {}

    @property
    def catalog(self) -> Catalog:
        return self._catalog

    def replace_catalog(self, catalog: Catalog) -> None:
        self._catalog = catalog
        self.invalidate()

    def invalidate(self, *_: object) -> None:
        self._providers = {}
        self._assignments = {}
        self._plans = {}

    def select_route(self, context: RouteContext) -> RoutingDecision:
        """Decide the route of a session; raise `NoRouteError` when none can be built."""
        start = perf_counter()
        try:
            return self._select_route(context)
        finally:
            FLAG_EVALUATION_SECONDS.observe(perf_counter() - start)

    def _select_route(self, context: RouteContext) -> RoutingDecision:
        catalog = self._catalog
        evaluation = EvaluationContext(context.session_id, context.evaluation_attributes())
        assignments: list[Assignment] = []
        fallbacks: list[Fallback] = []
        resolve = self._client.string_resolver()
        mode = self._mode(resolve, context, evaluation, assignments, fallbacks)
        plan = self._plans.get(mode)
        if plan is None:
            plan = tuple(
                (kind, kind.value, catalog.routing[kind.value]) for kind in _kinds_for(mode)
            )
            self._plans[mode] = plan
        parts: dict[str, Mapping[str, Any] | None] = dict(_NO_PARTS)
        tenant_id = context.tenant_id
        providers = self._providers
        for kind, part, flag_key in plan:
            details = resolve(flag_key, "", evaluation)
            provider_id, fallback = self._choose(kind, flag_key, details, context, fallbacks)
            assignments.append(self._assignment(flag_key, details, fallback))
            provider = providers.get((tenant_id, provider_id))
            parts[part] = self._provider(provider_id, tenant_id) if provider is None else provider
        return RoutingDecision(mode, parts, tuple(assignments), tuple(fallbacks))

    def _mode(
        self,
        resolve: StringResolver,
        context: RouteContext,
        evaluation: EvaluationContext,
        assignments: list[Assignment],
        fallbacks: list[Fallback],
    ) -> Mode:
        flag_key = self._catalog.routing["mode"]
        details = resolve(flag_key, "", evaluation)
        problem = _flag_problem(details)
        if problem is None:
            mode = _MODES.get(details.value)
            if mode is not None:
                assignments.append(self._assignment(flag_key, details))
                return mode
            problem = (FallbackReason.UNKNOWN_PROVIDER, f"{details.value!r} is not a mode")
        fallback = Fallback("mode", flag_key, *problem, details.value or None, _PIPELINE)
        assignments.append(self._assignment(flag_key, details, fallback))
        self._fall_back(fallback, context, fallbacks)
        return Mode.PIPELINE

    def _choose(
        self,
        kind: ProviderKind,
        flag_key: str,
        details: FlagEvaluationDetails[str],
        context: RouteContext,
        fallbacks: list[Fallback],
    ) -> tuple[str, Fallback | None]:
        """The provider id for `kind`, and the fallback when it is not the flag's value."""
        problem = _flag_problem(details) or self._provider_problem(kind, details.value, context)
        if problem is None:
            return details.value, None
        default = self._catalog.default_for(kind, context.region)
        if not self._catalog.is_available(default, context.region):
            raise NoRouteError(
                f"no {kind} provider for session {context.session_id!r} in region "
                f"{context.region!r}: flag {flag_key!r} gave {problem[1]} and the default "
                f"{default!r} is unavailable there",
                context={**context.as_log_context(), "flag_key": flag_key, "part": str(kind)},
            )
        fallback = Fallback(kind.value, flag_key, *problem, details.value or None, default)
        self._fall_back(fallback, context, fallbacks)
        return default, fallback

    def _provider_problem(
        self, kind: ProviderKind, provider_id: str, context: RouteContext
    ) -> tuple[FallbackReason, str] | None:
        spec = self._catalog.providers.get(provider_id)
        if spec is None:
            return FallbackReason.UNKNOWN_PROVIDER, f"unknown provider {provider_id!r}"
        if spec.kind is not kind:
            return FallbackReason.WRONG_KIND, f"{provider_id!r} is a {spec.kind} provider"
        if context.region not in spec.regions:
            return (
                FallbackReason.UNAVAILABLE_IN_REGION,
                f"{provider_id!r} is not available in region {context.region!r}",
            )
        return None

    def _fall_back(
        self, fallback: Fallback, context: RouteContext, fallbacks: list[Fallback]
    ) -> None:
        fallbacks.append(fallback)
        _FALLBACKS.get(fallback.part, fallback.flag_key, fallback.reason.value).inc()
        logger.warning(
            "route fallback: session=%s tenant=%s region=%s flag=%s part=%s reason=%s (%s); "
            "using %s",
            context.session_id,
            context.tenant_id,
            context.region,
            fallback.flag_key,
            fallback.part,
            fallback.reason.value,
            fallback.detail,
            fallback.used,
            extra={
                **context.as_log_context(),
                "flag_key": fallback.flag_key,
                "part": fallback.part,
                "reason": fallback.reason.value,
                "used": fallback.used,
            },
        )

    def _assignment(
        self, flag_key: str, details: FlagEvaluationDetails[str], fallback: Fallback | None = None
    ) -> Assignment:
        """`_assignment(...)`, the same object for the same fields when the flag is no split."""
        meta = details.flag_metadata
        for name in _PER_SESSION_META:
            if name in meta:
                return _assignment(flag_key, details, fallback)
        error_code = details.error_code
        key = (
            flag_key,
            str(meta.get(FLAG_VERSION_KEY, "")),
            details.variant,
            details.value or None,
            str(details.reason or ""),
            None if error_code is None else str(error_code),
            None if fallback is None else fallback.reason.value,
            None if fallback is None else fallback.used,
        )
        cache = self._assignments
        assignment = cache.get(key)
        if assignment is None:
            assignment = Assignment(*key[:6], None, None, None, None, key[6], key[7])
            if len(cache) >= _ASSIGNMENT_CACHE_LIMIT:
                cache.clear()
            cache[key] = assignment
        return assignment

    def _provider(self, provider_id: str, tenant_id: str) -> Mapping[str, Any]:
        key = (tenant_id, provider_id)
        cached = self._providers.get(key)
        if cached is None:
            if len(self._providers) >= _PROVIDER_CACHE_LIMIT:
                self._providers = {}
            cached = self._catalog.resolve(provider_id, tenant_id).to_dict()
            self._providers[key] = cached
        return cached


def _kinds_for(mode: Mode) -> tuple[ProviderKind, ...]:
    media = (ProviderKind.S2S,) if mode is Mode.S2S else (ProviderKind.STT, ProviderKind.TTS)
    return (*media, ProviderKind.VAD, ProviderKind.TURN_DETECTION)


def _flag_problem(details: FlagEvaluationDetails[str]) -> tuple[FallbackReason, str] | None:
    if details.error_code is not None:
        code = str(details.error_code)
        reason = (
            FallbackReason.FLAG_NOT_FOUND if code == "FLAG_NOT_FOUND" else FallbackReason.FLAG_ERROR
        )
        return reason, f"{code}: {details.error_message or 'evaluation failed'}"
    if details.reason == Reason.DISABLED:
        return FallbackReason.FLAG_DISABLED, "the flag is disabled"
    if not details.value:
        return FallbackReason.NO_VARIANT, "the flag gave no variant"
    return None


def _assignment(
    flag_key: str, details: FlagEvaluationDetails[str], fallback: Fallback | None = None
) -> Assignment:
    """The flag's assignment; with the fallback of the route part it decided, if any."""
    meta = details.flag_metadata
    weights = meta.get(SPLIT_WEIGHTS_KEY)
    split_weights = None if weights is None else _parsed_weights(str(weights))
    return Assignment(
        flag_key=flag_key,
        flag_version=str(meta.get(FLAG_VERSION_KEY, "")),
        variant=details.variant,
        value=details.value or None,
        reason=str(details.reason or ""),
        error_code=str(details.error_code) if details.error_code is not None else None,
        bucket_unit=_str_or_none(meta.get(BUCKET_UNIT_KEY)),
        bucket_key=_str_or_none(meta.get(BUCKET_KEY_KEY)),
        split_id=_str_or_none(meta.get(SPLIT_ID_KEY)),
        split_weights=split_weights,
        fallback=None if fallback is None else fallback.reason.value,
        used=None if fallback is None else fallback.used,
    )


@lru_cache(maxsize=1024)
def _parsed_weights(weights: str) -> tuple[tuple[str, int], ...]:
    """`{"a": 50, "b": 50}` as pairs; a split has few distinct weightings."""
    return tuple(orjson.loads(weights).items())


def _str_or_none(value: object) -> str | None:
    return None if value is None else str(value)
