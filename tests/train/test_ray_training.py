"""Real Ray Train V2 runs of ``train_func`` (TorchTrainer, the session's Ray and job registry)."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
import torch

from sienn_ray.data.demo import DEMO_TRAINING_CONFIG, demo_records
from sienn_ray.data.templates import PromptTemplate, render_prompt
from sienn_ray.data.tokenize import encode_text
from sienn_ray.jobs.client import REGISTRY_NAME
from sienn_ray.schemas.common import new_id, utcnow
from sienn_ray.schemas.datasets import DatasetRecord, DatasetValidation
from sienn_ray.schemas.jobs import DeepSpeedConfig, JobRecord
from sienn_ray.settings import get_settings
from sienn_ray.train.launch import build_trainer

pytestmark = pytest.mark.slow


@pytest.fixture
def ray_job(ray_session, registry, make_spec):
    """Factory: a spec whose job exists in the real registry (pending); finished at teardown."""
    created = []

    def make(**kwargs):
        spec = make_spec(registry_name=REGISTRY_NAME, namespace=get_settings().ray_namespace, **kwargs)
        dataset = DatasetRecord(
            dataset_id=new_id("ds"), filename="train.jsonl", format="jsonl", total_samples=30, size_bytes=1,
            preview=[], validation=DatasetValidation(valid=True, columns=["instruction", "output"], null_counts={}),
            uploaded_at=utcnow(), sha256="0" * 64)
        registry.put_dataset(dataset).result()
        now = utcnow()
        rec = registry.adopt_job(JobRecord(  # this test drives the trainer itself: it holds the job's lease
            job_id=spec.job_id, model_name=spec.model_name, model_path=spec.model_path,
            dataset_id=dataset.dataset_id, config=spec.config, total_epochs=spec.config.num_epochs,
            created_at=now, updated_at=now), "test-driver").result()
        created.append(spec.job_id)
        return spec.model_copy(update={"lease_token": rec.lease.token})

    yield make
    for job_id in created:
        registry.finish(job_id, "cancelled", "test over").result()


def _events(reader, job_id) -> list:
    return reader.list_events(job_id)


def _greedy_exact(model_path: str, adapter_dir: str) -> int:
    """How many demo prompts the fine-tuned adapter answers exactly (and then stops), via plain PEFT."""
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(adapter_dir)
    template = PromptTemplate.load(Path(adapter_dir))
    model = PeftModel.from_pretrained(AutoModelForCausalLM.from_pretrained(model_path), adapter_dir).eval()
    eos = tokenizer.eos_token_id
    exact = 0
    for rec in demo_records():
        ids = encode_text(tokenizer, render_prompt(template, rec["instruction"], rec["input"]))
        with torch.no_grad():
            out = model.generate(input_ids=torch.tensor([ids]), attention_mask=torch.ones(1, len(ids), dtype=torch.long),
                                 max_new_tokens=48, do_sample=False, eos_token_id=eos,
                                 pad_token_id=tokenizer.pad_token_id)
        new = out[0, len(ids):].tolist()
        exact += eos in new and tokenizer.decode(new[: new.index(eos)]) == rec["output"]
    return exact


def test_learning_is_real_on_the_demo_settings(ray_job, registry, reader):
    spec = ray_job(**DEMO_TRAINING_CONFIG)
    start = time.time()
    result = build_trainer(spec).fit()
    seconds = time.time() - start
    epoch_losses = [e.data["train_loss"] for e in _events(reader, spec.job_id) if e.type == "epoch_end"]
    assert len(epoch_losses) == DEMO_TRAINING_CONFIG["num_epochs"]
    drop = 1 - epoch_losses[-1] / epoch_losses[0]
    exact = _greedy_exact(spec.model_path, spec.adapter_dir)
    print(f"demo: {seconds:.1f} s, train loss {epoch_losses[0]:.3f} -> {epoch_losses[-1]:.3f} "
          f"({drop:.0%} drop), {exact}/30 exact")
    assert drop >= 0.25
    assert exact >= 27
    assert seconds < 240
    assert result.metrics["step"] == registry.get_job(spec.job_id).result().total_steps


def test_two_cpu_workers_train_together(ray_job, registry, reader):
    spec = ray_job(num_workers=2)
    result = build_trainer(spec).fit()
    rec = registry.get_job(spec.job_id).result()
    assert result.error is None and result.metrics["step"] == rec.total_steps == 8  # 2 x 4 steps of 2 x 4 rows
    assert rec.progress == 100.0 and rec.metrics.train_loss is not None
    assert Path(rec.last_checkpoint) == Path(result.checkpoint.path)
    assert Path(spec.adapter_dir, "adapter_model.safetensors").exists()
    types = [e.type for e in _events(reader, spec.job_id)]
    assert types.count("epoch_end") == 2 and types.count("checkpoint") == 2
    points = reader.loss_history(spec.job_id)
    assert points and points[-1].step == 8


@pytest.mark.parametrize("workers", [1, 2])
def test_deepspeed_zero2_on_cpu(ray_job, registry, reader, workers):
    spec = ray_job(num_workers=workers, deepspeed=DeepSpeedConfig(stage=2).model_dump())
    result = build_trainer(spec).fit()
    assert result.error is None and result.metrics["step"] == 2 * -(-30 // (4 * workers))
    assert Path(spec.adapter_dir, "adapter_model.safetensors").exists()
    files = {p.name for p in Path(result.checkpoint.path).rglob("*") if p.is_file()}
    optim = {f for f in files if "optim_states" in f}
    assert len(optim) == workers  # every rank's optimizer partition is in the checkpoint
    assert "adapter_model.safetensors" in files
    if workers == 2:  # and every rank loads its partition back when the job resumes
        longer = spec.model_copy(update={"config": spec.config.model_copy(update={"num_epochs": 3})})
        assert build_trainer(longer).fit().metrics["step"] == 12
        assert [e.data["step"] for e in _events(reader, spec.job_id) if e.type == "resumed"] == [8]


def test_a_new_run_of_the_same_job_resumes_from_its_last_checkpoint(ray_job, registry, reader):
    spec = ray_job(num_epochs=1)
    first = build_trainer(spec).fit()
    assert first.metrics["step"] == 8
    longer = spec.model_copy(update={"config": spec.config.model_copy(update={"num_epochs": 3})})
    second = build_trainer(longer).fit()
    assert second.metrics["step"] == 24
    resumed = [e.data for e in _events(reader, spec.job_id) if e.type == "resumed"]
    assert resumed == [{"step": 8, "epoch": 1}]


def test_resume_from_a_named_checkpoint(ray_job, registry, reader, make_spec):
    donor = ray_job(num_epochs=2, checkpoint_every_steps=5, checkpoints_to_keep=10)
    build_trainer(donor).fit()
    checkpoint = Path(donor.storage_path) / donor.job_id / "checkpoint_00000010"
    assert checkpoint.exists()
    spec = ray_job(num_epochs=2)
    result = build_trainer(spec, resume_from=str(checkpoint)).fit()
    assert result.metrics["step"] == 16
    assert [e.data["step"] for e in _events(reader, spec.job_id) if e.type == "resumed"] == [10]


def test_cancel_stops_every_rank_and_keeps_a_checkpoint(ray_job, registry, reader):
    spec = ray_job(num_workers=2, num_epochs=400)
    outcome = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("result", build_trainer(spec).fit()), daemon=True)
    runner.start()
    deadline = time.time() + 180
    while time.time() < deadline and registry.get_job(spec.job_id).result().step < 2:
        time.sleep(0.5)
    registry.request_stop(spec.job_id, "cancel").result()
    runner.join(timeout=120)
    assert not runner.is_alive(), "a rank kept training after cancel"
    result = outcome["result"]
    total = registry.get_job(spec.job_id).result().total_steps
    assert result.metrics["stopped"] == "cancelled" and 2 <= result.metrics["step"] < total
    assert Path(result.checkpoint.path).name == f"checkpoint_{result.metrics['step']:08d}"
    assert not Path(spec.adapter_dir).exists()  # a cancelled job writes no final adapter
