"""The provider catalog: every provider a route may name, where it runs, its
default config, per-tenant overrides and the fallback of each kind.

A catalog file (YAML or JSON) has these sections::

    regions: [us, eu, ap]
    routing: {mode: voice-mode, stt: stt-provider, ...}   # which flag decides which part
    providers: {<id>: {kind, vendor, model, regions, config}}
    defaults: {stt: <id>, tts: <id>, s2s: <id>, vad: <id>, turn_detection: <id>}
    region_defaults: {<region>: {<kind>: <id>}}          # optional
    tenants: {<tenant>: {kinds: {<kind>: {...}}, providers: {<id>: {...}}}}  # optional
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from types import MappingProxyType
from typing import Any

import yaml

from .errors import CatalogError


class ProviderKind(StrEnum):
    STT = "stt"
    TTS = "tts"
    S2S = "s2s"
    VAD = "vad"
    TURN_DETECTION = "turn_detection"


class Mode(StrEnum):
    PIPELINE = "pipeline"
    S2S = "s2s"


ROUTING_PARTS = ("mode", *(kind.value for kind in ProviderKind))
DEFAULT_ROUTING = MappingProxyType(
    {
        "mode": "voice-mode",
        "stt": "stt-provider",
        "tts": "tts-provider",
        "s2s": "s2s-provider",
        "vad": "vad-provider",
        "turn_detection": "turn-detector",
    }
)
_PROVIDER_FIELDS = frozenset({"kind", "vendor", "model", "regions", "config", "description"})


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    """One catalog entry."""

    id: str
    kind: ProviderKind
    vendor: str
    model: str
    regions: frozenset[str]
    config: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class ResolvedProvider:
    """A catalog entry with the tenant's overrides applied: what a route carries."""

    id: str
    kind: ProviderKind
    vendor: str
    model: str
    config: Mapping[str, Any]

    def to_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "kind": str(self.kind),
            "vendor": self.vendor,
            "model": self.model,
            "config": dict(self.config),
        }


@dataclass(frozen=True, slots=True)
class TenantConfig:
    kinds: Mapping[ProviderKind, Mapping[str, Any]] = field(default_factory=dict)
    providers: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Catalog:
    """A validated provider catalog; build it with `parse_catalog` or `load_catalog`."""

    regions: tuple[str, ...]
    providers: Mapping[str, ProviderSpec]
    defaults: Mapping[ProviderKind, str]
    region_defaults: Mapping[str, Mapping[ProviderKind, str]] = field(default_factory=dict)
    tenants: Mapping[str, TenantConfig] = field(default_factory=dict)
    routing: Mapping[str, str] = field(default_factory=lambda: DEFAULT_ROUTING)
    source: str = ""

    @property
    def region_set(self) -> frozenset[str]:
        return frozenset(self.regions)

    def default_for(self, kind: ProviderKind, region: str) -> str:
        """The fallback provider of `kind` in `region`."""
        return self.region_defaults.get(region, {}).get(kind) or self.defaults[kind]

    def is_available(self, provider_id: str, region: str) -> bool:
        spec = self.providers.get(provider_id)
        return spec is not None and region in spec.regions

    def resolve(self, provider_id: str, tenant_id: str) -> ResolvedProvider:
        """The provider's config merged with the tenant's overrides
        (catalog < tenant kind override < tenant provider override)."""
        spec = self.providers[provider_id]
        config = dict(spec.config)
        tenant = self.tenants.get(tenant_id)
        if tenant is not None:
            config.update(tenant.kinds.get(spec.kind, {}))
            config.update(tenant.providers.get(provider_id, {}))
        return ResolvedProvider(spec.id, spec.kind, spec.vendor, spec.model, config)


def load_catalog(path: str | Path) -> Catalog:
    """Read and validate a catalog file (YAML or JSON)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise CatalogError(f"catalog {path}: cannot read: {exc.strerror}") from exc
    try:
        data = json.loads(text) if path.suffix == ".json" else yaml.safe_load(text)
    except (ValueError, yaml.YAMLError) as exc:
        raise CatalogError(f"catalog {path}: not valid {path.suffix[1:] or 'YAML'}: {exc}") from exc
    return parse_catalog(data, source=str(path))


def parse_catalog(data: object, *, source: str = "<catalog>") -> Catalog:
    """Validate a catalog document; raise `CatalogError` naming the first problem."""
    doc = _mapping(data, source, "the document")
    regions = _regions(doc.get("regions"), source)
    providers = {
        _string(pid, source, "providers key"): _provider(pid, spec, regions, source)
        for pid, spec in _mapping(doc.get("providers"), source, "providers").items()
    }
    catalog = Catalog(
        regions=regions,
        providers=MappingProxyType(providers),
        defaults=_kind_map(doc.get("defaults"), "defaults", providers, source, required=True),
        region_defaults=_region_defaults(
            doc.get("region_defaults", {}), regions, providers, source
        ),
        tenants=_tenants(doc.get("tenants", {}), providers, source),
        routing=_routing(doc.get("routing", dict(DEFAULT_ROUTING)), source),
        source=source,
    )
    _check_defaults_everywhere(catalog)
    return catalog


def _fail(source: str, where: str, problem: str) -> CatalogError:
    return CatalogError(
        f"catalog {source}: {where}: {problem}",
        context={"source": source, "path": where, "problem": problem},
    )


def _mapping(value: object, source: str, where: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(source, where, f"must be a mapping, got {type(value).__name__}")
    return value


def _string(value: object, source: str, where: str) -> str:
    if not isinstance(value, str) or not value:
        raise _fail(source, where, "must be a non-empty string")
    return value


def _regions(value: object, source: str) -> tuple[str, ...]:
    if not isinstance(value, list) or not value:
        raise _fail(source, "regions", "must be a non-empty list of region names")
    regions = tuple(_string(region, source, "regions") for region in value)
    if len(set(regions)) != len(regions):
        raise _fail(source, "regions", "lists a region twice")
    return regions


def _kind(value: object, source: str, where: str) -> ProviderKind:
    try:
        return ProviderKind(str(value))
    except ValueError:
        known = ", ".join(kind.value for kind in ProviderKind)
        raise _fail(source, where, f"unknown kind {value!r}; known: {known}") from None


def _provider(pid: str, spec: object, regions: tuple[str, ...], source: str) -> ProviderSpec:
    where = f"providers.{pid}"
    body = _mapping(spec, source, where)
    unknown = sorted(set(body) - _PROVIDER_FIELDS)
    if unknown:
        raise _fail(source, where, f"unknown field(s) {unknown}")
    available = body.get("regions", list(regions))
    if not isinstance(available, list) or not available:
        raise _fail(source, f"{where}.regions", "must be a non-empty list")
    strange = sorted(set(map(str, available)) - set(regions))
    if strange:
        raise _fail(source, f"{where}.regions", f"unknown region(s) {strange}")
    return ProviderSpec(
        id=pid,
        kind=_kind(body.get("kind"), source, f"{where}.kind"),
        vendor=_string(body.get("vendor"), source, f"{where}.vendor"),
        model=_string(body.get("model", pid), source, f"{where}.model"),
        regions=frozenset(map(str, available)),
        config=MappingProxyType(dict(_mapping(body.get("config", {}), source, f"{where}.config"))),
    )


def _kind_map(
    value: object,
    where: str,
    providers: Mapping[str, ProviderSpec],
    source: str,
    *,
    required: bool,
) -> Mapping[ProviderKind, str]:
    body = _mapping(value, source, where)
    result: dict[ProviderKind, str] = {}
    for raw_kind, pid in body.items():
        kind = _kind(raw_kind, source, f"{where}.{raw_kind}")
        spec = providers.get(str(pid))
        if spec is None:
            raise _fail(source, f"{where}.{kind}", f"unknown provider {pid!r}")
        if spec.kind is not kind:
            raise _fail(source, f"{where}.{kind}", f"{pid!r} is a {spec.kind} provider, not {kind}")
        result[kind] = spec.id
    missing = [kind.value for kind in ProviderKind if kind not in result]
    if required and missing:
        raise _fail(source, where, f"no default for kind(s) {missing}")
    return MappingProxyType(result)


def _region_defaults(
    value: object, regions: tuple[str, ...], providers: Mapping[str, ProviderSpec], source: str
) -> Mapping[str, Mapping[ProviderKind, str]]:
    result = {}
    for region, kinds in _mapping(value, source, "region_defaults").items():
        if region not in regions:
            raise _fail(source, f"region_defaults.{region}", "unknown region")
        where = f"region_defaults.{region}"
        result[region] = _kind_map(kinds, where, providers, source, required=False)
    return MappingProxyType(result)


def _tenants(
    value: object, providers: Mapping[str, ProviderSpec], source: str
) -> Mapping[str, TenantConfig]:
    result = {}
    for tenant, body in _mapping(value, source, "tenants").items():
        where = f"tenants.{tenant}"
        spec = _mapping(body, source, where)
        unknown = sorted(set(spec) - {"kinds", "providers"})
        if unknown:
            raise _fail(source, where, f"unknown field(s) {unknown}; use 'kinds' or 'providers'")
        kinds = {
            _kind(kind, source, f"{where}.kinds.{kind}"): dict(
                _mapping(cfg, source, f"{where}.kinds.{kind}")
            )
            for kind, cfg in _mapping(spec.get("kinds", {}), source, f"{where}.kinds").items()
        }
        overrides = _mapping(spec.get("providers", {}), source, f"{where}.providers")
        for pid, cfg in overrides.items():
            if pid not in providers:
                raise _fail(source, f"{where}.providers.{pid}", "unknown provider")
            _mapping(cfg, source, f"{where}.providers.{pid}")
        result[str(tenant)] = TenantConfig(kinds, {k: dict(v) for k, v in overrides.items()})
    return MappingProxyType(result)


def _routing(value: object, source: str) -> Mapping[str, str]:
    body = dict(DEFAULT_ROUTING)
    for part, flag_key in _mapping(value, source, "routing").items():
        if part not in ROUTING_PARTS:
            raise _fail(source, f"routing.{part}", f"unknown part; known: {list(ROUTING_PARTS)}")
        body[part] = _string(flag_key, source, f"routing.{part}")
    return MappingProxyType(body)


def _check_defaults_everywhere(catalog: Catalog) -> None:
    """The fallback of last resort must work in every region."""
    for region in catalog.regions:
        for kind in ProviderKind:
            pid = catalog.default_for(kind, region)
            if not catalog.is_available(pid, region):
                raise _fail(
                    catalog.source,
                    f"defaults.{kind}",
                    f"{pid!r} is not available in region {region!r}; "
                    f"add region_defaults.{region}.{kind}",
                )
