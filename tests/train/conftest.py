"""Fixtures for the training tests: job specs over the demo data and the embedded models."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from sienn_ray.data.demo import demo_records, write_demo_jsonl
from sienn_ray.schemas.common import new_id
from sienn_ray.schemas.jobs import TrainingConfig
from sienn_ray.train.spec import TrainJobSpec

# Small and fast: enough to exercise every path, not to learn.
QUICK = dict(num_epochs=2, batch_size=4, max_length=128, learning_rate=5e-3, lora_r=4, lora_alpha=8)


def write_rows(path: Path, n: int) -> Path:
    """``n`` instruction rows (the demo's, numbered once they repeat)."""
    base = demo_records()
    with open(path, "w", encoding="utf-8") as handle:
        for i in range(n):
            rec = dict(base[i % len(base)])
            if i >= len(base):
                rec["instruction"] = f"{rec['instruction']} (variant {i // len(base)})"
            handle.write(json.dumps(rec) + "\n")
    return path


@pytest.fixture
def make_spec(tmp_path, embedded_models):
    """Factory: a TrainJobSpec on ``model`` over ``rows`` rows (default: the 30 demo rows)."""

    def make(model: str = "sienn-tiny-gpt2", rows: int | None = None, registry_name: str | None = None,
             namespace: str | None = None, job_id: str | None = None, **config) -> TrainJobSpec:
        data = tmp_path / f"data-{rows}.jsonl"
        if rows is None:
            write_demo_jsonl(data)
        else:
            write_rows(data, rows)
        job_id = job_id or new_id("job")
        return TrainJobSpec(
            job_id=job_id, model_name=model, model_path=str(embedded_models[model]), dataset_path=str(data),
            config=TrainingConfig(**(QUICK | config)), storage_path=str(tmp_path / "ray"),
            adapter_dir=str(tmp_path / "jobs" / job_id / "adapter"), registry_name=registry_name,
            namespace=namespace,
        )

    return make
