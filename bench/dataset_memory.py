"""Worker memory for a large dataset: tokenized examples as a Python list vs the memory-mapped Arrow cache.

    python bench/dataset_memory.py --size-mb 1024 --world-size 8

Generates a normalized instruction JSONL of about ``--size-mb`` MB, then, in a fresh interpreter per
mode, does what a train worker does with its shard (rank 0 of ``--world-size``): ``load_shard`` (read,
tokenize with the toy GPT-2 tokenizer, max_length 512), ``fill_to``, one pass over every example's length
(the loop's ``lengths``) and the examples of 100 random steps. Prints one JSON object per mode: RSS
before and after, the peak RSS, wall time, the examples and tokens seen. ``SIENN_ARROW_MIN_BYTES`` picks
the mode (0: Arrow; huge: list). The folder is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from upload import generate  # noqa: E402

CHILD = """
import json, os, random, resource, sys, time
import psutil
from sienn_ray.data.templates import template_for
from sienn_ray.models.resolve import resolve_model
from sienn_ray.train.inputs import fill_to, load_shard
from transformers import AutoTokenizer
path, rows, world = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
tokenizer = AutoTokenizer.from_pretrained(resolve_model("sienn-tiny-gpt2").path)
template = template_for("alpaca", tokenizer)
proc = psutil.Process()
before = proc.memory_info().rss
start = time.perf_counter()
shard = load_shard(path, list(range(rows)), 0, world, tokenizer, template, 512, False)
examples = fill_to(shard.examples, len(shard.examples))
lengths = [len(e) for e in examples]
rng = random.Random(0)
seen = sum(len(examples[rng.randrange(len(examples))]) for _ in range(100 * 4))
print(json.dumps({"examples": len(lengths), "tokens": sum(lengths), "rss_before_mb": round(before / 2**20),
                  "rss_after_mb": round(proc.memory_info().rss / 2**20),
                  "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
                  "seconds": round(time.perf_counter() - start, 1), "random_access_tokens": seen}))
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024)
    parser.add_argument("--world-size", type=int, default=8)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="sienn-dataset-memory-"))
    try:
        data = folder / "data.jsonl"
        rows = generate(data, args.size_mb)
        result = {"size_mb": args.size_mb, "rows": rows, "world_size": args.world_size}
        for mode, threshold in (("list", str(1 << 62)), ("arrow", "0")):
            env = dict(os.environ, SIENN_ARROW_MIN_BYTES=threshold)
            out = subprocess.run([sys.executable, "-c", CHILD, str(data), str(rows), str(args.world_size)],
                                 env=env, capture_output=True, text=True, check=True)
            result[mode] = json.loads(out.stdout.strip().splitlines()[-1])
        result["peak_rss_ratio"] = round(result["arrow"]["peak_rss_mb"] / result["list"]["peak_rss_mb"], 3)
        result["same_tokens"] = result["arrow"]["tokens"] == result["list"]["tokens"]
        print(json.dumps(result, indent=2))
    finally:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
