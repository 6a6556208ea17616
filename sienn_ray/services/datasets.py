"""Datasets: list, get, delete (a dataset an unfinished job uses cannot be deleted)."""

from __future__ import annotations

import asyncio

from ..data import storage
from ..schemas.datasets import DatasetList, DatasetRecord
from .context import Services
from .lookup import find_dataset, known_id
from .principal import Principal


def list_datasets(services: Services, principal: Principal, limit: int, offset: int) -> DatasetList:
    items, total = services.reader.list_datasets(principal.scope, limit, offset)
    return DatasetList(datasets=items, total=total, limit=limit, offset=offset)


def get_dataset(services: Services, principal: Principal, dataset_id: str) -> DatasetRecord:
    return find_dataset(services, principal, dataset_id)


async def delete_dataset(services: Services, principal: Principal, dataset_id: str) -> DatasetRecord:
    rec = await services.registry.delete_dataset(known_id(dataset_id, "dataset_id"), principal.scope)
    await asyncio.to_thread(storage.remove_dataset_files, rec.dataset_id)
    return rec
