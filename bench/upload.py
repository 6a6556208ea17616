"""Benchmark dataset ingestion against pandas on a generated JSONL file.

    python bench/upload.py --size-mb 1024

Generates an Alpaca-style JSONL of about ``--size-mb`` MB in a temporary folder,
then times ``ingest_file`` (validate + normalize + hash) and
``pandas.read_json(path, lines=True)`` on the same file, each in its own
subprocess so that each peak RSS is its own (``os.wait4`` returns the child's
rusage). Prints one JSON object; the goal is time_ratio <= 1.0 and
memory_ratio <= 0.2. pandas needs about 17-19x the file size in RAM, so it is skipped
(ratios null) when that would not fit. The folder is deleted afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

WORDS = (
    "the model learns to answer questions about data training fine tuning adapter rank alpha "
    "gradient batch token sequence python function returns list value error file café naïve "
    "数据 模型 训练 🙂 résumé über"
).split()

CHILD_CODE = {
    "ours": (
        "from sienn_ray.data.ingest import ingest_file\n"
        "r = ingest_file(PATH, OUT, filename='bench.jsonl')\n"
        "RESULT = {'rows': r.total_rows, 'samples': r.total_samples}\n"
    ),
    "pandas": (
        "import pandas\n"
        "df = pandas.read_json(PATH, lines=True)\n"
        "RESULT = {'rows': len(df)}\n"
    ),
}
IMPORTS = {"ours": "import sienn_ray.data.ingest", "pandas": "import pandas"}


def _text(rng: random.Random, lo: int, hi: int) -> str:
    return " ".join(rng.choices(WORDS, k=rng.randint(lo, hi)))


def generate(path: Path, size_mb: int, seed: int = 0) -> int:
    """Write about size_mb MB of JSONL from a pool of varied rows; return the row count."""
    rng = random.Random(seed)
    pool = []
    for _ in range(4000):
        row = {
            "instruction": _text(rng, 5, 40),
            "input": _text(rng, 0, 30) if rng.random() < 0.4 else "",
            "output": _text(rng, 10, 200),
        }
        pool.append(json.dumps(row, ensure_ascii=rng.random() < 0.5) + "\n")
    block = "".join(pool).encode()
    target = size_mb * 1024 * 1024
    written = 0
    with open(path, "wb") as f:
        while written + len(block) <= target:
            f.write(block)
            written += len(block)
        rest = block[: target - written]
        rest = rest[: rest.rfind(b"\n") + 1]
        f.write(rest)
    return (written // len(block)) * len(pool) + rest.count(b"\n")


def run_child(code: str) -> dict:
    """Run code in a fresh interpreter; return its own wall time, result and peak RSS."""
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    stdout = proc.stdout.read()
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode:
        raise SystemExit(f"child failed ({proc.returncode}):\n{code}")
    result = json.loads(stdout.strip().splitlines()[-1])
    result["peak_rss_mb"] = round(usage.ru_maxrss / 1024, 1)  # ru_maxrss is in KiB on Linux
    return result


def timed(side: str, path: Path, out: Path) -> dict:
    body = CHILD_CODE[side].replace("PATH", repr(str(path))).replace("OUT", repr(str(out)))
    indented = "\n".join("    " + line for line in body.splitlines())
    code = (
        f"import json, time\n{IMPORTS[side]}\nt = time.perf_counter()\nif True:\n{indented}\n"
        "RESULT['seconds'] = round(time.perf_counter() - t, 2)\nprint(json.dumps(RESULT))\n"
    )
    return run_child(code)


def _pandas_if_it_fits(path: Path, workdir: Path, rss_per_mb: float) -> dict:
    """pandas holds the whole file many times over; skip it rather than push a shared machine into OOM."""
    need_mb = path.stat().st_size / 2**20 * rss_per_mb
    available_mb = psutil.virtual_memory().available / 2**20
    if need_mb > 0.8 * available_mb:
        return {"skipped": f"pandas would need about {need_mb:.0f} MB of RAM; {available_mb:.0f} MB available"}
    return timed("pandas", path, workdir / "unused")


def _ratio(ours: dict, theirs: dict, key: str) -> float | None:
    return round(ours[key] / theirs[key], 3) if key in theirs else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=int, default=1024, help="size of the generated JSONL file")
    parser.add_argument("--dir", default=None, help="where to put the temporary folder (default: system temp)")
    parser.add_argument("--pandas-rss-per-mb", type=float, default=20.0,
                        help="pandas' peak RSS per MB of JSONL (measured: 17-19), to skip it when RAM is short")
    args = parser.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="sienn-bench-", dir=args.dir))
    try:
        free = shutil.disk_usage(workdir).free
        needed = args.size_mb * 1024 * 1024 * 2.2  # the file plus its normalized copy
        if free < needed:
            raise SystemExit(f"not enough disk in {workdir}: {free >> 20} MB free, {int(needed) >> 20} MB needed")
        path = workdir / "bench.jsonl"
        started = time.perf_counter()
        rows = generate(path, args.size_mb)
        gen_seconds = time.perf_counter() - started
        size_mb = round(path.stat().st_size / 2**20, 1)

        baseline = {side: run_child(f"{IMPORTS[side]}\nprint('{{}}')")["peak_rss_mb"] for side in IMPORTS}
        ours = timed("ours", path, workdir / "normalized.jsonl")
        pandas_result = _pandas_if_it_fits(path, workdir, args.pandas_rss_per_mb)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    print(json.dumps({
        "size_mb": size_mb,
        "rows": rows,
        "generate_seconds": round(gen_seconds, 1),
        "ours": ours,
        "pandas": pandas_result,
        "import_only_peak_rss_mb": baseline,
        "time_ratio": _ratio(ours, pandas_result, "seconds"),
        "memory_ratio": _ratio(ours, pandas_result, "peak_rss_mb"),
        "goal": {"time_ratio_max": 1.0, "memory_ratio_max": 0.2},
    }, indent=2))


if __name__ == "__main__":
    main()
