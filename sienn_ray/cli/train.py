"""`python -m sienn_ray train`: the batch path into the same services as the API.

It works the same from a shell next to the cluster and under
``ray job submit ... -- python -m sienn_ray train ...``: it ingests the dataset
file if given a path (or finds an uploaded dataset by id), validates and queues
the job with the API's schema and services, and follows it with a progress bar.
"""

from __future__ import annotations

import asyncio
import json
import sys
import time
from pathlib import Path

import yaml

from ..errors import SiennError
from ..schemas.jobs import JobStatus, StartFinetuningRequest
from ..services import datasets, ingest, jobs, submit
from ..services.context import Services
from ..services.principal import DEFAULT_PRINCIPAL, Principal

POLL_S = 1.0


def load_config(path: str | None) -> dict:
    if not path:
        return {}
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a mapping of training settings")
    return data.get("config", data)


async def dataset_for(services: Services, principal: Principal, dataset: str):
    """A file to ingest now, or the id of an uploaded dataset."""
    source = Path(dataset)
    if source.exists():
        return await ingest.ingest(services, principal, source, source.name, source.stem)
    return datasets.get_dataset(services, principal, dataset)


def follow(services: Services, principal: Principal, job_id: str) -> JobStatus:
    """Print a progress bar until the job ends; returns its final status."""
    from tqdm import tqdm

    bar = tqdm(total=100.0, unit="%", desc=job_id, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
    rec = jobs.get_job(services, principal, job_id)
    while not rec.status.is_terminal:
        time.sleep(POLL_S)
        rec = jobs.get_job(services, principal, job_id)
        bar.n = rec.progress
        loss = rec.metrics.train_loss
        where = f"queued #{rec.queue_position}" if rec.queue_position else f"step {rec.step}/{rec.total_steps or '?'}"
        bar.set_postfix_str(f"{rec.status.value} {where}" + (f" loss {loss:.4f}" if loss is not None else ""))
    bar.n = rec.progress
    bar.close()
    print(f"{job_id}: {rec.status.value}: {rec.message}")
    if rec.adapter_path:
        print(f"adapter: {rec.adapter_path}")
    return rec.status


def run_train(args) -> int:
    import ray

    from ..services.connect import connect_services
    from ..settings import get_settings

    try:
        config = load_config(args.config)
        StartFinetuningRequest(dataset_id="ds_" + "0" * 16, model_name=args.model, config=config)
    except Exception as err:  # pydantic lists every problem
        print(f"Invalid config: {err}", file=sys.stderr)
        return 2
    ray.init(address=args.address or "auto", namespace=get_settings().ray_namespace, log_to_driver=False)
    services, principal = connect_services(), DEFAULT_PRINCIPAL
    try:
        dataset = asyncio.run(dataset_for(services, principal, args.dataset))
        request = StartFinetuningRequest(dataset_id=dataset.dataset_id, model_name=args.model, config=config)
        rec = asyncio.run(submit.submit(services, principal, request, source="cli"))
    except SiennError as err:
        print(f"{err.error_code}: {err.detail}", file=sys.stderr)
        for problem in err.errors:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    print(f"queued {rec.job_id} on {rec.model_name} with dataset {rec.dataset_id}: {rec.message}")
    if args.no_wait:
        return 0
    return 0 if follow(services, principal, rec.job_id) == JobStatus.COMPLETED else 1
