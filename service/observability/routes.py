"""The route template of an ASGI request, for metric labels and span names."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from starlette.routing import Route
from starlette.types import Scope

UNMATCHED = "unmatched"
"""The route label of a request that no route matched (404s, probes of random paths)."""
METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})


class RouteTemplates:
    """The path template of the route that served a request (`/v1/sessions/{session_id}`),
    never the raw path; read from the scope once the router has matched.

    FastAPI's router records a matched APIRoute in `scope["route"]`; for a plain
    Starlette route (the hot paths, see `sessions.register_hot_path`) it records
    only the endpoint, whose route is looked up once among the app's routes."""

    def __init__(self) -> None:
        self._by_endpoint: dict[Callable[..., Any], str] | None = None

    def of(self, scope: Scope) -> str:
        route = scope.get("route")
        if route is not None:
            return str(route.path)
        endpoint = scope.get("endpoint")
        if endpoint is None:
            return UNMATCHED
        if self._by_endpoint is None:
            self._by_endpoint = _plain_routes(scope["app"].router.routes)
        return self._by_endpoint.get(endpoint, UNMATCHED)


def _plain_routes(routes: list[Any]) -> dict[Callable[..., Any], str]:
    templates: dict[Callable[..., Any], str] = {}
    for route in routes:
        if isinstance(route, Route):
            templates.setdefault(route.endpoint, route.path)
    return templates


def method_label(method: str) -> str:
    """The method, or `other` for one outside the standard set (the set stays bounded)."""
    return method if method in METHODS else "other"
