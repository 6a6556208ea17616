"""How long a job will take: its tokens x epochs over a measured throughput.

The throughput is what past completed jobs of the same model really achieved
(the caller passes their ``tokens_per_second``), else a quick calibration on
this machine: a few LoRA forward+backward steps on the model, cached in a JSON
file under the storage root so it runs once per model and thread count.
"""

from __future__ import annotations

import fcntl
import json
import os
import statistics
import time
from pathlib import Path
from typing import Sequence

# Ray Train start (controller, workers, process group), model load, and the teardown after the last
# step: 25-45 s for the embedded models on a busy 2-core machine (bench/train.py T3 and the Ray tests).
STARTUP_S = 30.0
# Two data-parallel workers do not train twice as fast: gradient sync and stragglers.
SCALING_EFFICIENCY = 0.85
CACHE_NAME = "throughput.json"


def estimate_seconds(total_tokens: int, epochs: int, tokens_per_second: float,
                     startup_s: float = STARTUP_S) -> float:
    """Seconds for ``epochs`` passes over ``total_tokens`` at ``tokens_per_second``, plus start-up."""
    if tokens_per_second <= 0:
        raise ValueError("tokens_per_second must be positive")
    return startup_s + total_tokens * epochs / tokens_per_second


def job_tokens_per_second(per_worker: float, num_workers: int) -> float:
    """A job's throughput from one worker's."""
    return per_worker * (1 if num_workers <= 1 else num_workers * SCALING_EFFICIENCY)


def throughput(model_path: str | Path, past_tokens_per_second: Sequence[float] = (), *, num_workers: int = 1,
               threads: int = 1, cache_file: Path | None = None) -> float:
    """Tokens/s to expect for a job: the median of past jobs of this model, else a (cached) calibration."""
    measured = [t for t in past_tokens_per_second if t and t > 0]
    if measured:
        return float(statistics.median(measured))
    return job_tokens_per_second(calibrate(model_path, threads=threads, cache_file=cache_file), num_workers)


def default_cache_file() -> Path:
    from ..paths import home

    return home() / "cache" / CACHE_NAME


def calibrate(model_path: str | Path, *, threads: int = 1, cache_file: Path | None = None, seq_len: int = 128,
              batch_size: int = 4, steps: int = 3) -> float:
    """One worker's LoRA training tokens/s on this machine for the model at ``model_path`` (cached)."""
    path = Path(model_path).resolve()
    cache_file = Path(cache_file) if cache_file is not None else default_cache_file()
    cached = _read_cache(cache_file).get(_cache_key(path, threads))
    if cached:
        return float(cached)
    value = _measure(path, threads, seq_len, batch_size, steps)
    _write_cache(cache_file, _cache_key(path, threads), value)
    return value


def cached_calibration(model_path: str | Path, *, threads: int = 1, cache_file: Path | None = None) -> float | None:
    """The calibration already cached for this model, or None; never measures (so never loads the model)."""
    path = Path(model_path).resolve()
    cache_file = Path(cache_file) if cache_file is not None else default_cache_file()
    cached = _read_cache(cache_file).get(_cache_key(path, threads))
    return float(cached) if cached else None


def _cache_key(path: Path, threads: int) -> str:
    import torch

    return f"{path}|{os.stat(path / 'config.json').st_mtime_ns}|threads={threads}|torch={torch.__version__}"


def _measure(path: Path, threads: int, seq_len: int, batch_size: int, steps: int) -> float:
    import torch

    from ..schemas.jobs import TrainingConfig
    from .model import load_lora_model

    previous = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        config = TrainingConfig(max_length=seq_len, batch_size=batch_size)
        with torch.random.fork_rng(devices=[]):
            model = load_lora_model(path, config)
            vocab = model.config.vocab_size
            ids = torch.randint(0, vocab, (batch_size, seq_len))
        params = [p for p in model.parameters() if p.requires_grad]
        optimizer = torch.optim.AdamW(params, lr=1e-4)
        elapsed = 0.0
        for step in range(steps + 1):  # the first step warms up allocators and kernels
            start = time.perf_counter()
            loss = model(input_ids=ids, labels=ids, use_cache=False).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            if step:
                elapsed += time.perf_counter() - start
        return batch_size * seq_len * steps / elapsed
    finally:
        torch.set_num_threads(previous)


def _read_cache(cache_file: Path) -> dict:
    try:
        return json.loads(cache_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


def _write_cache(cache_file: Path, key: str, value: float) -> None:
    cache_file.parent.mkdir(parents=True, exist_ok=True)
    with open(cache_file.with_suffix(".lock"), "a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        data = _read_cache(cache_file) | {key: value}
        tmp = cache_file.with_suffix(f".tmp-{os.getpid()}")
        tmp.write_text(json.dumps(data, indent=2, sort_keys=True), encoding="utf-8")
        os.replace(tmp, cache_file)
