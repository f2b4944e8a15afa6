"""Checks that a flag set and the provider catalog agree.

The flagd rules themselves (states, variants, targeting) are checked when the
flag set is parsed (`experiments.flags`); this module checks what only the
catalog knows: that routing flags name existing providers of the right kind,
and that a flag's default variant works in every region.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .catalog import Catalog, Mode, ProviderKind
from .errors import FlagValidationError
from .flags import FlagDefinition


@dataclass(frozen=True, slots=True)
class FlagWarning:
    """A finding that does not stop the flags from loading."""

    flag_key: str
    problem: str


def check_flags_against_catalog(
    flags: Mapping[str, FlagDefinition], catalog: Catalog, *, source: str = ""
) -> list[FlagWarning]:
    """Raise `FlagValidationError` for the first routing flag that the catalog
    cannot serve; return warnings (a routing flag that is absent) otherwise."""
    warnings = []
    for part, flag_key in catalog.routing.items():
        flag = flags.get(flag_key)
        if flag is None:
            warnings.append(FlagWarning(flag_key, f"no flag decides {part}: the default is used"))
            continue
        if part == "mode":
            _check_mode_flag(flag_key, flag, source)
        else:
            _check_provider_flag(flag_key, flag, ProviderKind(part), catalog, source)
    return warnings


def _check_mode_flag(flag_key: str, flag: FlagDefinition, source: str) -> None:
    modes = {mode.value for mode in Mode}
    for name, value in flag.variants.items():
        if value not in modes:
            raise FlagValidationError(
                f"variant value {value!r} is not a mode; expected one of {sorted(modes)}",
                source=source,
                flag_key=flag_key,
                path=f"/variants/{name}",
            )


def _check_provider_flag(
    flag_key: str, flag: FlagDefinition, kind: ProviderKind, catalog: Catalog, source: str
) -> None:
    for name, value in flag.variants.items():
        path = f"/variants/{name}"
        spec = catalog.providers.get(value) if isinstance(value, str) else None
        if spec is None:
            raise FlagValidationError(
                f"unknown provider id {value!r}: not in the catalog {catalog.source}",
                source=source,
                flag_key=flag_key,
                path=path,
            )
        if spec.kind is not kind:
            raise FlagValidationError(
                f"provider {value!r} is a {spec.kind} provider; this flag routes {kind}",
                source=source,
                flag_key=flag_key,
                path=path,
            )
    _check_default_everywhere(flag_key, flag, catalog, source)


def _check_default_everywhere(
    flag_key: str, flag: FlagDefinition, catalog: Catalog, source: str
) -> None:
    default = flag.default_variant
    if default is None:
        return
    provider_id = flag.variants.get(default)
    missing = [r for r in catalog.regions if not catalog.is_available(str(provider_id), r)]
    if missing:
        raise FlagValidationError(
            f"default variant {default!r} ({provider_id}) is not available in region(s) {missing}",
            source=source,
            flag_key=flag_key,
            path="/defaultVariant",
        )
