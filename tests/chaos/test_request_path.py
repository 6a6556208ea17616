"""The request path bench/api_load.py measures: nothing per request waits for a thread of the pool."""

from __future__ import annotations

import importlib
import inspect
import pkgutil

from fastapi.routing import APIRoute, APIRouter

import sienn_ray.api.routes as routes


def _dependencies(dependant):
    for dep in dependant.dependencies:
        yield dep
        yield from _dependencies(dep)


def test_every_route_dependency_is_a_coroutine():
    # FastAPI runs a plain ``def`` dependency in its thread pool: under 200 polling connections each such
    # hand-off waits for the GIL, and status polling fell to a third of /health's rate with two of them.
    sync = set()
    for info in pkgutil.iter_modules(routes.__path__):
        module = importlib.import_module(f"{routes.__name__}.{info.name}")
        module_routes = [r for router in vars(module).values() if isinstance(router, APIRouter) for r in router.routes]
        for route in module_routes:
            if isinstance(route, APIRoute):
                sync |= {f"{route.path}: {dep.call.__module__}.{dep.call.__name__}"
                         for dep in _dependencies(route.dependant)
                         if dep.call is not None and not inspect.iscoroutinefunction(dep.call)}
    assert not sync, sorted(sync)


def test_the_polled_status_route_solves_no_dependency():
    # FastAPI's dependency solving was the largest cost left in a status poll in a Serve replica.
    from sienn_ray.api.routes import jobs

    polled = {r.path: r for r in jobs.polled_router.routes if isinstance(r, APIRoute)}["/api/training-status/{job_id}"]
    assert list(_dependencies(polled.dependant)) == []
