"""Benchmark training against plain baselines; prints one JSON object.

    python bench/train.py [--model sienn-tiny-gpt2] [--rows 400] [--epochs 2]

T1  steady tokens/s of a 1-worker Ray Train job / a plain PEFT loop on the identical batches, same
    thread count (goal >= 0.95). The job's throughput is the median of the tokens/s it reports to a
    stand-in registry actor (one value per ~2 s window), the loop's is its tokens over its step time.
T2  useful (non-pad) tokens/s of our batching / HF Trainer padding every sample to max_length, on
    lengths drawn log-normally between 16 and 512 (goal >= 2.0). Also shows our length-grouped
    fallback (used for models that cannot pack).
T3  submit-to-first-step seconds of a job on a running cluster / a plain script's start-to-first-step.
T4  the real default base (smollm2-135m-instruct, chat template), side by side in one run on the same
    records: steady tokens/s of a 1-worker Ray Train job vs the plain PEFT loop on its batches (goal
    >= 1.0) and vs TRL's SFTTrainer with packing (goal >= 1.0). TRL packs to ``MAX_LENGTH``-token rows
    (one row per step, about as many tokens as our 4-example packed batch); its figure is its tokens
    over its train_runtime.

Everything runs on CPU with one thread per worker; the storage root is a temporary folder.
T1-T3 use ``--model`` (a toy model by default); ``--skip-toy`` runs T4 alone, ``--real-model none`` skips it.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MAX_LENGTH = 512
BATCH = 4
THREADS = 1
LORA = dict(lora_r=16, lora_alpha=32, lora_dropout=0.0, learning_rate=1e-3)
WORDS = ("the model learns to answer questions about data training adapter rank gradient batch token "
         "sequence python function returns list value river mill baker bread school garden").split()


def lognormal_lengths(n: int, seed: int = 0) -> list[int]:
    """Lengths between 16 and 512, log-normal (median ~90 tokens, long tail)."""
    rng = random.Random(seed)
    return [min(MAX_LENGTH, max(16, int(rng.lognormvariate(math.log(90), 0.8)))) for _ in range(n)]


def write_records(path: Path, rows: int, tokenizer, seed: int = 0) -> None:
    """Instruction records whose tokenized lengths follow ``lognormal_lengths``."""
    rng = random.Random(seed)
    with open(path, "w", encoding="utf-8") as handle:
        for target in lognormal_lengths(rows, seed):
            instruction = " ".join(rng.choices(WORDS, k=8))
            output = " ".join(rng.choices(WORDS, k=max(1, target - 60)))  # the Alpaca prompt is ~55 tokens
            handle.write(json.dumps({"instruction": instruction, "input": "", "output": output}) + "\n")


def plan_batches(spec, tokenizer):
    """The batches the Ray worker will build for epoch 0..epochs-1 (same code, same seed)."""
    from sienn_ray.data.packing import collate, epoch_batches
    from sienn_ray.data.templates import template_for
    from sienn_ray.train.inputs import count_rows, load_shard, split_rows

    cfg = spec.config
    template = template_for(cfg.prompt_template, tokenizer)
    rows, _ = split_rows(count_rows(spec.dataset_path), 0.0, cfg.seed)
    shard = load_shard(spec.dataset_path, rows, 0, 1, tokenizer, template, cfg.max_length, False)
    lengths = [len(e) for e in shard.examples]
    return [collate([shard.examples[i] for i in b], cfg.max_length, tokenizer.pad_token_id, True)
            for epoch in range(cfg.num_epochs) for b in epoch_batches(lengths, cfg.batch_size, cfg.seed, epoch)]


def plain_peft_loop(spec, batches, warmup: int = 3) -> float:
    """Tokens/s of the textbook PEFT loop (model computes the loss from labels) on ``batches``."""
    import torch
    from transformers import get_scheduler

    from sienn_ray.train.model import load_lora_model

    torch.set_num_threads(THREADS)
    torch.manual_seed(spec.config.seed)
    model = load_lora_model(spec.model_path, spec.config).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=spec.config.learning_rate)
    scheduler = get_scheduler("linear", optimizer, num_warmup_steps=0, num_training_steps=len(batches))
    tokens, elapsed = 0, 0.0
    for i, batch in enumerate(batches):
        labels = torch.full_like(batch.targets, -100)
        labels[:, 1:] = batch.targets[:, :-1]  # the model shifts labels back itself
        start = time.perf_counter()
        loss = model(input_ids=batch.input_ids, position_ids=batch.position_ids, labels=labels,
                     use_cache=False).loss
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        if i >= warmup:
            elapsed += time.perf_counter() - start
            tokens += batch.num_tokens
    return tokens / elapsed


def start_recorder(ray, name: str):
    @ray.remote(num_cpus=0)
    class Recorder:
        """Stands in for the job registry: records each progress update with its arrival time."""

        def __init__(self):
            self.updates = []

        def report_progress(self, job_id, update, token=None):  # the reporter sends its lease token
            self.updates.append((time.time(), update))
            return {"cancel_requested": False}

        def add_event(self, job_id, type, data=None, token=None):
            pass

        def add_loss_point(self, job_id, point, token=None):
            pass

        def get(self):
            return self.updates

    return Recorder.options(name=name, namespace="sienn-bench").remote()


def ray_job(ray, spec) -> tuple[float, float, list]:
    """Run the job; (submit-to-first-step seconds, fit seconds, reported updates)."""
    from sienn_ray.train.launch import build_trainer

    recorder = start_recorder(ray, spec.registry_name)
    ray.get(recorder.get.remote())
    submitted = time.time()
    build_trainer(spec).fit()
    fit_s = time.time() - submitted
    updates = ray.get(recorder.get.remote())
    ray.kill(recorder)
    first = next(t for t, u in updates if u.get("step", 0) >= 1)
    return first - submitted, fit_s, [u for _, u in updates]


def steady_tokens_per_second(updates: list) -> float:
    values = [u["metrics"]["tokens_per_second"] for u in updates
              if u.get("step", 0) >= 1 and "tokens_per_second" in u.get("metrics", {})]
    return statistics.median(values[1:-1] if len(values) > 3 else values)


PLAIN_SCRIPT = """
import time, json, sys
import torch
from peft import LoraConfig, get_peft_model
from transformers import AutoModelForCausalLM, AutoTokenizer
torch.set_num_threads(1)
path, data = sys.argv[1], sys.argv[2]
tok = AutoTokenizer.from_pretrained(path)
rows = [json.loads(l) for l in open(data)][:4]
ids = [tok(r["instruction"] + "\\n" + r["output"])["input_ids"][:512] for r in rows]
width = max(map(len, ids))
x = torch.tensor([i + [tok.pad_token_id] * (width - len(i)) for i in ids])
model = get_peft_model(AutoModelForCausalLM.from_pretrained(path),
                       LoraConfig(r=16, lora_alpha=32, target_modules=["c_attn", "c_proj", "c_fc"], task_type="CAUSAL_LM"))
opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-3)
model(input_ids=x, labels=x).loss.backward()
opt.step()
print("FIRST_STEP", time.time(), flush=True)
"""


def plain_script_first_step(model_path: str, data: Path) -> float:
    start = time.time()
    out = subprocess.run([sys.executable, "-c", PLAIN_SCRIPT, model_path, str(data)], capture_output=True,
                         text=True, check=True, env=os.environ | {"OMP_NUM_THREADS": "1"})
    stamp = next(line for line in out.stdout.splitlines() if line.startswith("FIRST_STEP"))
    return float(stamp.split()[1]) - start


def trl_sft_tokens_per_second(spec, workdir: Path) -> float:
    """Tokens/s of TRL's SFTTrainer with packing on the job's records, same LoRA, model and threads."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    from sienn_ray.train.model import load_lora_model, load_tokenizer

    torch.set_num_threads(THREADS)
    torch.manual_seed(spec.config.seed)
    with open(spec.dataset_path, encoding="utf-8") as handle:
        rows = [json.loads(line) for line in handle if line.strip()]
    data = Dataset.from_list([{"prompt": [{"role": "user", "content": r["instruction"]}],
                               "completion": [{"role": "assistant", "content": r["output"]}]} for r in rows])
    cfg = spec.config
    args = SFTConfig(output_dir=str(workdir / "trl"), packing=True, max_length=MAX_LENGTH,
                     per_device_train_batch_size=1, num_train_epochs=cfg.num_epochs, learning_rate=cfg.learning_rate,
                     lr_scheduler_type="linear", report_to=[], save_strategy="no", logging_strategy="no",
                     use_cpu=True, dataloader_num_workers=0, seed=cfg.seed)
    trainer = SFTTrainer(model=load_lora_model(spec.model_path, cfg), args=args, train_dataset=data,
                         processing_class=load_tokenizer(spec.model_path))
    tokens = sum(len(ids) for ids in trainer.train_dataset["input_ids"]) * cfg.num_epochs
    return tokens / trainer.train().metrics["train_runtime"]


def real_model_section(args, workdir: Path, ray) -> dict:
    """T4: the real default base, our Ray Train job vs a plain PEFT loop vs TRL SFTTrainer (packing)."""
    from transformers import AutoTokenizer

    from sienn_ray.models.pretrained import prepare_pretrained
    from sienn_ray.schemas.jobs import TrainingConfig
    from sienn_ray.train.spec import TrainJobSpec

    started = time.time()
    model_path = str(prepare_pretrained(args.real_model, workdir / "models"))
    prepare_s = time.time() - started
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = workdir / "real.jsonl"
    write_records(data, args.real_rows, tokenizer, seed=1)
    config = TrainingConfig(num_epochs=1, batch_size=BATCH, max_length=MAX_LENGTH, cpus_per_worker=THREADS,
                            validation_split=0.0, **LORA)
    spec = TrainJobSpec(job_id="job_" + "4" * 16, model_name=args.real_model, model_path=model_path,
                        dataset_path=str(data), config=config, storage_path=str(workdir / "ray"),
                        adapter_dir=str(workdir / "real-adapter"), registry_name="bench-registry-real",
                        namespace="sienn-bench")
    batches = plan_batches(spec, tokenizer)
    plain = plain_peft_loop(spec, batches)
    trl = trl_sft_tokens_per_second(spec, workdir)
    _, fit_s, updates = ray_job(ray, spec)
    ours = steady_tokens_per_second(updates)
    return {"model": args.real_model, "rows": args.real_rows, "steps": len(batches),
            "prepare_model_seconds": round(prepare_s, 1), "ray_fit_seconds": round(fit_s, 1),
            "ray_job_tokens_per_second": round(ours, 1), "plain_peft_tokens_per_second": round(plain, 1),
            "trl_sft_packing_tokens_per_second": round(trl, 1), "ratio_vs_plain_peft": round(ours / plain, 3),
            "ratio_vs_trl_sft": round(ours / trl, 3), "goal": ">= 1.0 both"}


def synthetic_examples(n: int, vocab: int, seed: int = 0):
    from sienn_ray.data.tokenize import IGNORE_INDEX, TokenizedExample

    rng = random.Random(seed)
    out = []
    for length in lognormal_lengths(n, seed):
        ids = [rng.randrange(3, vocab) for _ in range(length)]
        prompt = length // 4
        out.append(TokenizedExample(ids, [IGNORE_INDEX] * prompt + ids[prompt:]))
    return out


def ours_useful_tokens_per_second(model_path: str, examples, packing: bool) -> float:
    import torch

    from sienn_ray.data.packing import collate, epoch_batches
    from sienn_ray.schemas.jobs import TrainingConfig
    from sienn_ray.train.steppers import TorchStepper
    from sienn_ray.train.model import batch_loss, load_lora_model

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    config = TrainingConfig(batch_size=BATCH, max_length=MAX_LENGTH, **LORA)
    model = load_lora_model(model_path, config).train()
    plan = epoch_batches([len(e) for e in examples], BATCH, 0, 0, group_by_length=not packing)
    stepper = TorchStepper(model, config, len(plan), 1)
    start = time.perf_counter()
    for idx in plan:
        batch = collate([examples[i] for i in idx], MAX_LENGTH, 1, packing)
        stepper.backward(batch_loss(model, batch), True)
        stepper.step()
    return sum(len(e) for e in examples) / (time.perf_counter() - start)


def hf_trainer_useful_tokens_per_second(model_path: str, examples, workdir: Path) -> float:
    import torch
    from datasets import Dataset
    from transformers import Trainer, TrainingArguments, default_data_collator

    from sienn_ray.data.tokenize import IGNORE_INDEX
    from sienn_ray.schemas.jobs import TrainingConfig
    from sienn_ray.train.model import load_lora_model

    torch.set_num_threads(THREADS)
    torch.manual_seed(0)
    model = load_lora_model(model_path, TrainingConfig(batch_size=BATCH, max_length=MAX_LENGTH, **LORA))

    def padded(e):
        pad = MAX_LENGTH - len(e)
        return {"input_ids": e.input_ids + [1] * pad, "attention_mask": [1] * len(e) + [0] * pad,
                "labels": e.labels + [IGNORE_INDEX] * pad}

    data = Dataset.from_list([padded(e) for e in examples])
    args = TrainingArguments(output_dir=str(workdir / "hf"), per_device_train_batch_size=BATCH, num_train_epochs=1,
                             learning_rate=LORA["learning_rate"], report_to=[], save_strategy="no",
                             logging_strategy="no", use_cpu=True, dataloader_num_workers=0, seed=0)
    result = Trainer(model=model, args=args, train_dataset=data, data_collator=default_data_collator).train()
    return sum(len(e) for e in examples) / result.metrics["train_runtime"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--model", default="sienn-tiny-gpt2")
    parser.add_argument("--rows", type=int, default=400)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--t2-examples", type=int, default=96)
    parser.add_argument("--real-model", default="smollm2-135m-instruct", help="T4's base; 'none' skips T4")
    parser.add_argument("--real-rows", type=int, default=48)
    parser.add_argument("--skip-toy", action="store_true", help="run T4 only")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sienn-bench-train-"))
    os.environ["SIENN_HOME"] = str(workdir)
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    try:
        print(json.dumps(run(args, workdir), indent=2))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def run(args, workdir: Path) -> dict:
    import ray

    out = {} if args.skip_toy else toy_sections(args, workdir)
    if args.real_model != "none":
        ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="sienn-bench", log_to_driver=False)
        try:
            out["T4"] = real_model_section(args, workdir, ray)
        finally:
            ray.shutdown()
    return out


def toy_sections(args, workdir: Path) -> dict:
    """T1-T3 on ``--model``."""
    from transformers import AutoTokenizer

    from sienn_ray.models.embedded import ensure_embedded_models
    from sienn_ray.schemas.jobs import TrainingConfig
    from sienn_ray.train.spec import TrainJobSpec

    model_path = str(ensure_embedded_models(workdir / "models")[args.model])
    tokenizer = AutoTokenizer.from_pretrained(model_path)
    data = workdir / "data.jsonl"
    write_records(data, args.rows, tokenizer)

    def spec(job: str, epochs: int) -> TrainJobSpec:
        config = TrainingConfig(num_epochs=epochs, batch_size=BATCH, max_length=MAX_LENGTH, cpus_per_worker=THREADS,
                                validation_split=0.0, **LORA)
        return TrainJobSpec(job_id=job, model_name=args.model, model_path=model_path, dataset_path=str(data),
                            config=config, storage_path=str(workdir / "ray"), adapter_dir=str(workdir / job),
                            registry_name=f"bench-registry-{job}", namespace="sienn-bench")

    t1_spec = spec("job_" + "1" * 16, args.epochs)
    batches = plan_batches(t1_spec, tokenizer)
    plain_tps = plain_peft_loop(t1_spec, batches)

    examples = synthetic_examples(args.t2_examples, tokenizer.vocab_size)
    t2 = {"ours_packed": ours_useful_tokens_per_second(model_path, examples, packing=True),
          "ours_length_grouped": ours_useful_tokens_per_second(model_path, examples, packing=False),
          "hf_trainer_pad_to_max_length": hf_trainer_useful_tokens_per_second(model_path, examples, workdir)}
    plain_first = plain_script_first_step(model_path, data)

    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, namespace="sienn-bench", log_to_driver=False)
    try:
        cold_first, t1_fit_s, updates = ray_job(ray, t1_spec)
        warm_first, t3_fit_s, _ = ray_job(ray, spec("job_" + "3" * 16, 1))
    finally:
        ray.shutdown()
    ray_tps = steady_tokens_per_second(updates)
    return {
        "model": args.model, "threads_per_worker": THREADS,
        "T1": {"ray_job_tokens_per_second": round(ray_tps, 1), "plain_peft_tokens_per_second": round(plain_tps, 1),
               "ratio": round(ray_tps / plain_tps, 3), "goal": ">= 0.95", "steps": len(batches),
               "ray_fit_seconds": round(t1_fit_s, 1)},
        "T2": {**{k: round(v, 1) for k, v in t2.items()},
               "ratio": round(t2["ours_packed"] / t2["hf_trainer_pad_to_max_length"], 3),
               "ratio_length_grouped": round(t2["ours_length_grouped"] / t2["hf_trainer_pad_to_max_length"], 3),
               "goal": ">= 2.0", "examples": len(examples),
               "mean_length": round(sum(map(len, examples)) / len(examples), 1)},
        "T3": {"submit_to_first_step_s": round(warm_first, 2), "plain_script_to_first_step_s": round(plain_first, 2),
               "ratio": round(warm_first / plain_first, 3),
               "first_job_on_a_fresh_cluster_s": round(cold_first, 2)},
    }


if __name__ == "__main__":
    main()
