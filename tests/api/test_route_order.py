"""The routes are tried in order (the status poll first, see api/app.py): none may take a later route's requests
(no Ray)."""

from __future__ import annotations

import re

from fastapi.routing import APIRoute

from sienn_ray.api.app import create_app


def _api_routes(routes) -> list[APIRoute]:
    """The app's routes in the order a request tries them (included routers in place, in their order)."""
    flat = []
    for route in routes:
        included = getattr(route, "original_router", None)  # FastAPI's wrapper of an included router
        flat += _api_routes(included.routes) if included is not None else [route]
    return [r for r in flat if isinstance(r, APIRoute)]


def _shadowed(routes: list[APIRoute]) -> list[tuple[str, str]]:
    """(earlier, later) pairs where the earlier route matches the later route's own path, same method."""
    def concrete(path: str) -> str:  # a parameter becomes a value no fixed segment uses
        return re.sub(r"\{[^}]+\}", "p-0123", path)

    return [(earlier.path, later.path) for i, later in enumerate(routes) for earlier in routes[:i]
            if earlier.methods & later.methods and earlier.path != later.path
            and earlier.path_regex.match(concrete(later.path))]


def test_no_route_shadows_a_later_one():
    routes = _api_routes(create_app().routes)
    assert len(routes) > 30 and [r.path for r in routes[:2]] == ["/api/training-status/{job_id}", "/health"]
    assert _shadowed(routes) == []


def test_a_parameter_route_before_a_fixed_one_is_reported():
    routes = _api_routes(create_app().routes)
    compare = next(r for r in routes if r.path == "/api/jobs/compare")
    by_id = next(r for r in routes if r.path == "/api/jobs/{job_id}" and "GET" in r.methods)
    swapped = [r for r in routes if r is not compare]
    swapped.insert(swapped.index(by_id) + 1, compare)
    assert ("/api/jobs/{job_id}", "/api/jobs/compare") in _shadowed(swapped)
