"""`python -m sienn_ray train`: the batch path into the same registry as the API.

It works the same from a shell next to the cluster and under
``ray job submit ... -- python -m sienn_ray train ...``: it uploads the dataset
file into the store if given a path, validates the request with the API's
schema, queues the job, launches its runner and follows it with a progress bar.
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import yaml

from ..errors import SiennError
from ..schemas.jobs import JobStatus, StartFinetuningRequest

POLL_S = 1.0


def load_config(path: str | None) -> dict:
    if not path:
        return {}
    text = Path(path).read_text(encoding="utf-8")
    data = yaml.safe_load(text) if path.endswith((".yaml", ".yml")) else json.loads(text)
    if not isinstance(data, dict):
        raise SystemExit(f"{path}: expected a mapping of training settings")
    return data.get("config", data)


def ingest_or_lookup(dataset: str, registry):
    """A dataset id already in the store, or a file to validate and store now."""
    from ..data import storage
    from ..data.ingest import ingest_file

    source = Path(dataset)
    if not source.exists():
        return registry.call_sync("get_dataset", dataset)
    staging = storage.staging_dir()
    try:
        report = ingest_file(source, staging / "data.jsonl", source.name)
        record = storage.record_from_report(report, source.name, source.stem)
        try:
            return registry.call_sync("get_dataset", record.dataset_id)
        except SiennError:
            storage.install_dataset(staging / "data.jsonl", record)
            return registry.call_sync("put_dataset", record)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def follow(job_id: str, registry) -> JobStatus:
    """Print a progress bar until the job ends; returns its final status."""
    from tqdm import tqdm

    bar = tqdm(total=100.0, unit="%", desc=job_id, bar_format="{desc}: {percentage:3.0f}%|{bar}| {postfix}")
    rec = registry.call_sync("get_job", job_id)
    while not rec.status.is_terminal:
        time.sleep(POLL_S)
        rec = registry.call_sync("get_job", job_id)
        bar.n = rec.progress
        loss = rec.metrics.train_loss
        bar.set_postfix_str(f"{rec.status.value} step {rec.step}/{rec.total_steps or '?'}"
                            + (f" loss {loss:.4f}" if loss is not None else ""))
    bar.n = rec.progress
    bar.close()
    print(f"{job_id}: {rec.status.value}: {rec.message}")
    if rec.adapter_path:
        print(f"adapter: {rec.adapter_path}")
    return rec.status


def run_train(args) -> int:
    import ray

    from ..jobs import launcher
    from ..jobs.client import RegistryClient
    from ..jobs.submit import build_job_record, queued_message
    from ..settings import get_settings

    try:
        request = StartFinetuningRequest(dataset_id="ds_" + "0" * 16, model_name=args.model,
                                         config=load_config(args.config))
    except Exception as err:  # pydantic lists every problem
        print(f"Invalid config: {err}", file=sys.stderr)
        return 2
    ray.init(address=args.address or "auto", namespace=get_settings().ray_namespace, log_to_driver=False)
    registry = RegistryClient()
    try:
        dataset = ingest_or_lookup(args.dataset, registry)
        request = request.model_copy(update={"dataset_id": dataset.dataset_id})
        rec = build_job_record(request, dataset, [], source="cli")
        rec.message = queued_message(rec)
        rec = registry.call_sync("create_job", rec)
    except SiennError as err:
        print(f"{err.error_code}: {err.detail}", file=sys.stderr)
        for problem in err.errors:
            print(f"  - {problem}", file=sys.stderr)
        return 2
    launcher.launch_runner(rec.job_id, get_settings().ray_namespace)
    print(f"queued {rec.job_id} on {rec.model_name} with dataset {rec.dataset_id}: {rec.message}")
    if args.no_wait:
        return 0
    return 0 if follow(rec.job_id, registry) == JobStatus.COMPLETED else 1
