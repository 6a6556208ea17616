"""Benchmark GGUF export against its floor: raw ``gguf.quants`` quantization of the same tensors.

    python bench/export.py [--layers 10] [--hidden 512]

Builds a Llama-family model with random weights (about 134 MB in float32 with
the defaults) plus a random LoRA adapter (r=16, all projections) in a temporary
folder, then, each in its own subprocess so each peak RSS is its own:

* ``floor_<q>``: the merged tensors are loaded into memory first (not timed),
  then only ``gguf.quants.quantize`` runs over them with the types our writer
  picks. This is the least any GGUF writer built on ``gguf`` can take.
* ``export_<q>``: the whole export task for format ``gguf`` (merge while
  streaming, layout changes, quantization, writing, tokenizer, sha256, model
  card), first in a fresh process (cold: as a new Ray worker runs it) and then
  again in the same process (warm, best of the repeats).

Prints one JSON object: wall and CPU seconds, ratios to the floor, peak RSS
and the RSS the child had after its imports (so the export's own memory is
visible). On a shared machine the CPU-time ratio is the stable one.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

QUANTS = ("q8_0", "q4_0")
# Timings take the best of this many runs: the machine is shared, and noise only ever adds time.
REPEATS = 3


def peak_rss_bytes() -> int:
    """This process's own peak RSS. Not ru_maxrss: Linux carries the parent's peak into a child across exec."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def build(root: Path, layers: int, hidden: int) -> tuple[Path, Path]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, LlamaConfig

    from sienn_ray.data.templates import template_for
    from sienn_ray.models.embedded import build_embedded_model

    tiny = build_embedded_model("sienn-tiny-llama", root / "tiny")
    config = LlamaConfig(vocab_size=2048, hidden_size=hidden, intermediate_size=3 * hidden, num_hidden_layers=layers,
                         num_attention_heads=hidden // 64, num_key_value_heads=hidden // 128, head_dim=64,
                         max_position_embeddings=2048, tie_word_embeddings=False, bos_token_id=0, eos_token_id=0,
                         pad_token_id=1)
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    base = root / "base"
    model.save_pretrained(base)
    tokenizer = AutoTokenizer.from_pretrained(tiny)
    tokenizer.save_pretrained(base)
    peft = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, init_lora_weights=False, target_modules=[
        "q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]))
    adapter = root / "adapter"
    peft.save_pretrained(adapter)
    tokenizer.save_pretrained(adapter)
    template_for("alpaca", tokenizer).save(adapter)
    return base, adapter


def child_floor(base: Path, adapter: Path, quant: str) -> dict:
    import gguf

    from sienn_ray.export.gguf_writer import plan_tensors
    from sienn_ray.export.merge import load_json, merged_weights

    weights = merged_weights(base, adapter)
    plan = plan_tensors(weights, load_json(base / "config.json"), quant)
    arrays = [(item.rule.apply(weights.get(item.source)), item.qtype) for item in plan]
    runs = []
    for _ in range(REPEATS):
        runs.append(_timed(lambda: [gguf.quants.quantize(array, qtype) for array, qtype in arrays]))
    return {"wall": min(r[0] for r in runs), "cpu": min(r[1] for r in runs)}


def _timed(fn) -> tuple[float, float]:
    """(wall seconds, CPU seconds of this process) for one call."""
    wall, cpu = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - wall, time.process_time() - cpu


def child_export(base: Path, adapter: Path, quant: str, out: Path) -> dict:
    import psutil

    from sienn_ray.export.run import ExportSpec, run_export

    job = {"job_id": "job_00000000000000aa", "model_name": "bench-llama", "dataset_id": "ds_00000000000000bb",
           "config": {}, "metrics": {}}
    task = ExportSpec(export_id="exp_00000000000000cc", job_id=job["job_id"], format="gguf", quantization=quant,
                      base_dir=str(base), adapter_dir=str(adapter), out_dir=str(out), job=job)
    baseline = psutil.Process().memory_info().rss
    cold = _timed(lambda: run_export(task))
    # The same export again in this process: lazy imports and caches are warm.
    warm = [_timed(lambda: run_export(task)) for _ in range(REPEATS - 1)]
    size = sum(p.stat().st_size for p in out.glob("*.gguf"))
    return {"wall": cold[0], "cpu": cold[1], "warm_wall": min(w[0] for w in warm),
            "warm_cpu": min(w[1] for w in warm), "rss_after_imports_mb": baseline / 2**20, "gguf_mb": size / 2**20}


def run_child(kind: str, base: Path, adapter: Path, quant: str, out: Path) -> dict:
    """Run one measurement in a fresh interpreter (one CPU thread, like the export task's num_cpus=1)."""
    cmd = [sys.executable, __file__, "--child", kind, str(base), str(adapter), quant, str(out)]
    done = subprocess.run(cmd, stdout=subprocess.PIPE, text=True, check=True,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--layers", type=int, default=10)
    parser.add_argument("--hidden", type=int, default=512, help="a multiple of 128")
    parser.add_argument("--child", nargs=5, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        kind, base, adapter, quant, out = args.child
        runner = child_floor if kind == "floor" else lambda b, a, q: child_export(b, a, q, Path(out))
        result = runner(Path(base), Path(adapter), quant)
        result["peak_rss_mb"] = peak_rss_bytes() / 2**20
        print(json.dumps(result))
        return

    root = Path(tempfile.mkdtemp(prefix="sienn-bench-export-"))
    try:
        base, adapter = build(root, args.layers, args.hidden)
        size = sum(p.stat().st_size for p in base.glob("*.safetensors"))
        report = {"model_mb": round(size / 2**20, 1), "layers": args.layers, "hidden": args.hidden,
                  "cpu_count": os.cpu_count()}
        for quant in QUANTS:
            floor = run_child("floor", base, adapter, quant, root / "unused")
            export = run_child("export", base, adapter, quant, root / f"out-{quant}")
            report[quant] = {
                "export_wall_s": round(export["wall"], 2),
                "export_cpu_s": round(export["cpu"], 2),
                "export_warm_cpu_s": round(export["warm_cpu"], 2),
                "floor_wall_s": round(floor["wall"], 2),
                "floor_cpu_s": round(floor["cpu"], 2),
                "ratio_to_floor_cpu": round(export["cpu"] / floor["cpu"], 2),
                "ratio_to_floor_warm_cpu": round(export["warm_cpu"] / floor["cpu"], 2),
                "ratio_to_floor_wall": round(export["wall"] / floor["wall"], 2),
                "export_peak_rss_mb": round(export["peak_rss_mb"], 1),
                "export_rss_after_imports_mb": round(export["rss_after_imports_mb"], 1),
                "export_own_peak_mb": round(export["peak_rss_mb"] - export["rss_after_imports_mb"], 1),
                "floor_peak_rss_mb": round(floor["peak_rss_mb"], 1),
                "gguf_mb": round(export["gguf_mb"], 1),
            }
        print(json.dumps(report, indent=2))
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
