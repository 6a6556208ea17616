"""The typed registry client: one method per RegistryCore operation, same parameters, no strings."""

from __future__ import annotations

import asyncio
import inspect

import pytest
from jobs_fakes import FakeCluster, dataset

from sienn_ray.errors import DatasetNotFound
from sienn_ray.jobs.client import RegistryClient
from sienn_ray.jobs.core import RegistryCore
from sienn_ray.store import Store


def _public(cls) -> dict:
    """The public functions ``cls`` defines or inherits from our own classes (RegistryCore's RecordOperations)."""
    ours = tuple(base.__name__ + "." for base in cls.__mro__ if base.__module__.startswith("sienn_ray."))
    return {name: fn for name, fn in inspect.getmembers(cls, inspect.isfunction)
            if not name.startswith("_") and fn.__qualname__.startswith(ours)}


def test_every_operation_has_a_client_method_with_the_same_parameters():
    core, client = _public(RegistryCore), _public(RegistryClient)
    client.pop("for_actor", None), client.pop("in_process", None)
    assert set(core) == set(client) - {"for_actor", "in_process"}
    for name, fn in core.items():
        expected = _parameters(fn)
        actual = _parameters(client[name])
        assert actual == expected, name


def _parameters(fn) -> list[tuple]:
    # Once a test has started the JobRegistry actor, Ray's tracing has added ``_ray_trace_ctx`` to the
    # methods it inherits from RegistryCore: not a parameter anyone passes.
    return [(p.name, p.default, p.kind) for p in inspect.signature(fn).parameters.values()
            if p.name != "_ray_trace_ctx"]


def test_no_client_call_names_a_method_by_string():
    source = inspect.getsource(RegistryClient)
    assert "RegistryCore." in source and 'call("' not in source and "getattr(self" not in source


def test_in_process_client_awaits_and_blocks_alike(tmp_path):
    client = RegistryClient.in_process(RegistryCore(Store(f"sqlite:///{tmp_path / 'db'}"), FakeCluster()))
    stored = client.put_dataset(dataset()).result()
    assert asyncio.run(_get(client, stored.dataset_id)).dataset_id == stored.dataset_id
    with pytest.raises(DatasetNotFound):
        client.get_dataset("ds_00000000000000ff").result()


async def _get(client, dataset_id):
    return await client.get_dataset(dataset_id)
