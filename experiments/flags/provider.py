"""voxroute's OpenFeature provider: flagd flag sets, compiled, evaluated in process.

Register it with `openfeature.api.set_provider(VoxrouteProvider(flag_set), domain=...)`.
Provider contract: https://openfeature.dev/specification/sections/providers
Resolution never raises: errors come back as the caller's default with reason
ERROR and an error code (https://openfeature.dev/specification/types#error-code).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from openfeature.evaluation_context import EvaluationContext
from openfeature.event import ProviderEventDetails
from openfeature.flag_evaluation import FlagResolutionDetails, FlagType, FlagValueType
from openfeature.provider import AbstractProvider, Metadata

from .evaluator import CompiledFlagSet

logger = logging.getLogger(__name__)

ChangeListener = Callable[[CompiledFlagSet, Sequence[str]], None]
"""Called after `update` with the new flag set and the keys that changed."""

_T = TypeVar("_T")
_EMPTY: Mapping[str, Any] = {}
_FLOAT = FlagType.FLOAT


class VoxrouteProvider(AbstractProvider):
    """An OpenFeature provider holding one `CompiledFlagSet` at a time.

    Reads take the current set with a single attribute load (no lock); `update`
    swaps in a new set atomically, tells the change listeners and emits
    PROVIDER_CONFIGURATION_CHANGED with the changed flag keys.
    """

    def __init__(self, flag_set: CompiledFlagSet, *, name: str = "voxroute") -> None:
        super().__init__()
        self._compiled = flag_set
        self._name = name
        self._update_lock = threading.Lock()
        self._listeners: list[ChangeListener] = []

    @property
    def compiled(self) -> CompiledFlagSet:
        """The flag set evaluations use now."""
        return self._compiled

    def get_metadata(self) -> Metadata:
        return Metadata(name=self._name)

    def add_change_listener(self, listener: ChangeListener) -> None:
        """Call `listener(new_set, changed_keys)` after every `update` that changes flags."""
        self._listeners.append(listener)

    def remove_change_listener(self, listener: ChangeListener) -> None:
        self._listeners.remove(listener)

    def update(self, flag_set: CompiledFlagSet) -> list[str]:
        """Swap in `flag_set`; return the flag keys added, removed or changed (by version).

        When some changed, the listeners run (a failing one is logged, not raised)
        and PROVIDER_CONFIGURATION_CHANGED is emitted with `flags_changed`.
        """
        with self._update_lock:
            changed = flag_set.changed_keys(self._compiled)
            self._compiled = flag_set
        if not changed:
            return changed
        for listener in list(self._listeners):
            try:
                listener(flag_set, changed)
            except Exception:
                logger.exception("flag change listener %r failed", listener)
        details = ProviderEventDetails(
            flags_changed=list(changed),
            message=f"flags reloaded from {flag_set.source or 'memory'}",
        )
        self.emit_provider_configuration_changed(details)
        return changed

    def _resolve(
        self,
        flag_key: str,
        default_value: _T,
        context: EvaluationContext | None,
        flag_type: FlagType,
    ) -> FlagResolutionDetails[_T]:
        targeting_key, attributes = (
            (None, _EMPTY) if context is None else (context.targeting_key, context.attributes)
        )
        result = self._compiled.resolve(flag_key, targeting_key, attributes, flag_type=flag_type)
        value: Any = default_value if result.variant is None else result.value
        if flag_type is _FLOAT and isinstance(value, int):
            value = float(value)  # like flagd-core's resolve_float_value
        return FlagResolutionDetails(
            value=value,
            error_code=result.error_code,
            error_message=result.error_message,
            reason=result.reason,
            variant=result.variant,
            flag_metadata=result.flag_metadata,
        )

    def resolve_boolean_details(
        self,
        flag_key: str,
        default_value: bool,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[bool]:
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.BOOLEAN)

    def resolve_string_details(
        self, flag_key: str, default_value: str, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[str]:
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.STRING)

    def resolve_integer_details(
        self, flag_key: str, default_value: int, evaluation_context: EvaluationContext | None = None
    ) -> FlagResolutionDetails[int]:
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.INTEGER)

    def resolve_float_details(
        self,
        flag_key: str,
        default_value: float,
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[float]:
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.FLOAT)

    def resolve_object_details(
        self,
        flag_key: str,
        default_value: Sequence[FlagValueType] | Mapping[str, FlagValueType],
        evaluation_context: EvaluationContext | None = None,
    ) -> FlagResolutionDetails[Sequence[FlagValueType] | Mapping[str, FlagValueType]]:
        return self._resolve(flag_key, default_value, evaluation_context, FlagType.OBJECT)
