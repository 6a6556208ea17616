"""Test helpers shared by several test packages (no fixtures here; see conftest.py)."""

from __future__ import annotations

import socket
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def make_random_adapter(model_path: str, out_dir: Path, seed: int, r: int = 8) -> Path:
    """A PEFT LoRA adapter with non-zero random weights (so it changes outputs), saved like a job's."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from sienn_ray.data.templates import template_for

    torch.manual_seed(seed)
    base = AutoModelForCausalLM.from_pretrained(model_path)
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    targets = ["c_attn", "c_proj", "c_fc"] if base.config.model_type == "gpt2" else [
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]
    model = get_peft_model(base, LoraConfig(r=r, lora_alpha=2 * r, target_modules=targets,
                                            init_lora_weights=False, task_type="CAUSAL_LM"))
    with torch.no_grad():
        for name, param in model.named_parameters():
            if "lora_" in name:
                param.mul_(3.0)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    template_for("alpaca", tokenizer).save(out_dir)
    return out_dir


ROOT = Path(__file__).resolve().parent.parent
DEMO_CONFIG_FILE = ROOT / "examples" / "demo.yaml"


def demo_config() -> dict:
    """The README's documented demo settings."""
    import yaml

    return yaml.safe_load(DEMO_CONFIG_FILE.read_text())["config"]


def wait_for_job(api_url: str, job_id: str, timeout: float = 900, until=None) -> dict:
    """Poll training-status until the job is terminal (or ``until(status)`` is true)."""
    import httpx

    deadline = time.time() + timeout
    while time.time() < deadline:
        status = httpx.get(f"{api_url}/api/training-status/{job_id}", timeout=30).json()
        if (until and until(status)) or status["status"] in ("completed", "failed", "cancelled"):
            return status
        time.sleep(0.5)
    raise AssertionError(f"job {job_id} did not finish in {timeout} s: {status}")


def demo_dataset(registry):
    """The demo rows, ingested and recorded through ``registry`` (a RegistryClient), as an upload would."""
    import json

    from sienn_ray.data import storage
    from sienn_ray.data.demo import demo_records
    from sienn_ray.data.ingest import ingest_file

    staging = storage.staging_dir()
    source = staging / "demo.jsonl"
    source.write_text("".join(json.dumps(r) + "\n" for r in demo_records()))
    report = ingest_file(source, staging / "data.jsonl", "demo.jsonl")
    dataset = storage.record_from_report(report, "demo.jsonl", None, "default")
    storage.install_dataset(staging / "data.jsonl", dataset)
    return registry.put_dataset(dataset).result()
