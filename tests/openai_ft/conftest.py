"""Fixtures for the OpenAI fine-tuning API tests: the official ``openai`` SDK against our API.

``local_api``: the real FastAPI app served by uvicorn on a free localhost port, over an
in-process registry (a ``RegistryCore`` with a fake cluster) and a real SQLite store; no Ray,
so jobs never train: the tests move them along through the core, as runners would. The
training tests use the session's real Serve app (``api_url``) instead.
"""

from __future__ import annotations

import threading
import time

import pytest
from helpers import free_port
from openai_testkit import FakeCluster, LocalApi


@pytest.fixture(scope="module")
def local_api(tmp_path_factory):
    import uvicorn

    from sienn_ray.api import deps
    from sienn_ray.api.app import create_app
    from sienn_ray.jobs.client import RegistryClient
    from sienn_ray.jobs.core import RegistryCore
    from sienn_ray.services.context import Services
    from sienn_ray.store import ReadStore, Store

    url = f"sqlite:///{tmp_path_factory.mktemp('openai-db') / 'db.sqlite'}"
    cluster = FakeCluster(cpus=4)
    cluster.free_now = {"CPU": 0, "GPU": 0}  # nothing launches: submitted jobs stay queued
    core = RegistryCore(Store(url), cluster)
    services = Services(registry=RegistryClient.in_process(core), reader=ReadStore(url))
    previous = deps._services
    deps.set_services(services)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(create_app(), host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    assert server.started, "uvicorn did not start"
    yield LocalApi(f"http://127.0.0.1:{port}", core, services, cluster)
    server.should_exit = True
    thread.join(timeout=30)
    deps._services = previous
