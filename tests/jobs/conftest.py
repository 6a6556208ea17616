"""Fixtures of the control-plane tests that drive RegistryCore without Ray."""

from __future__ import annotations

import pytest
from jobs_fakes import POLICY, Clock, FakeCluster, dataset

from sienn_ray.jobs.core import RegistryCore
from sienn_ray.store import Store


@pytest.fixture()
def env(tmp_path):
    """(core, cluster, clock, database url): a RegistryCore over a real SQLite store with one dataset."""
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    clock, cluster = Clock(), FakeCluster(cpus=4)
    core = RegistryCore(Store(url), cluster, POLICY, clock)
    core.put_dataset(dataset())
    yield core, cluster, clock, url
    core.store.close()
