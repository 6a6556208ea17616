"""Driving Debian's ``wrk`` from the benchmarks: one bounded run, its figures as a dict.

wrk runs as its own process on loopback, bounded by ``-d`` (duration) and
``--timeout``; a Lua ``done`` hook prints the summary as one JSON line, so
nothing is scraped from its human-readable report. It includes the latency at
every 0.1 % quantile, so runs of one phase merge into one distribution.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

# wrk's Lua API: `paths` is cycled request by request (one connection's requests alternate).
QUANTILES = 1000
LUA = r"""
local QUANTILES = %(quantiles)d
local paths = {%(paths)s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  local q = {}
  for i = 1, QUANTILES do q[i] = latency:percentile(100 * i / QUANTILES) end
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"max_us":%%d,"mean_us":%%.1f,"quantiles_us":[%%s]}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency.max, latency.mean, table.concat(q, ",")))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(base_url: str, paths: list[str], *, connections: int, duration_s: int, threads: int = 2,
            timeout_s: int = 2) -> dict:
    """``wrk`` against ``base_url`` cycling ``paths``; requests/s, latency percentiles (ms), errors, and
    wrk's own figures (``raw``) for ``merge_runs``."""
    script = LUA % {"paths": ", ".join(json.dumps(p) for p in paths), "quantiles": QUANTILES}
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
    try:
        proc = subprocess.run(
            ["wrk", f"-t{threads}", f"-c{connections}", f"-d{duration_s}s", f"--timeout={timeout_s}s",
             "-s", handle.name, base_url],
            capture_output=True, text=True, timeout=duration_s + 60)
    finally:
        Path(handle.name).unlink(missing_ok=True)
    line = next((ln for ln in proc.stdout.splitlines() if ln.startswith("WRKJSON ")), None)
    if line is None:
        raise RuntimeError(f"wrk gave no summary (rc {proc.returncode}): {proc.stdout[-2000:]} {proc.stderr[-2000:]}")
    raw = json.loads(line.removeprefix("WRKJSON "))
    return _figures(paths, connections, [raw]) | {"raw": raw}


def merge_runs(runs: list[dict]) -> dict:
    """Runs of one phase (``run_wrk`` results) as one: requests over their summed time, errors summed,
    percentiles of their latencies pooled (each run's quantiles weighted by its requests)."""
    merged = _figures(runs[0]["paths"], runs[0]["connections"], [run["raw"] for run in runs])
    if all("cpu_ms_per_request" in run for run in runs):
        names = runs[0]["cpu_ms_per_request"]
        merged["cpu_ms_per_request"] = {name: round(sum(r["cpu_ms_per_request"][name] * r["requests"] for r in runs)
                                                    / max(merged["requests"], 1), 3) for name in names}
    merged["runs"] = [{k: run[k] for k in ("seconds", "requests_per_s", "p50_ms", "p99_ms", "error_total")}
                      for run in runs]
    return merged


def _figures(paths: list[str], connections: int, raws: list[dict]) -> dict:
    seconds = sum(raw["duration_us"] for raw in raws) / 1e6
    requests = sum(raw["requests"] for raw in raws)
    errors = {k: sum(raw[k] for raw in raws) for k in ("connect", "read", "write", "status", "timeout")}
    pooled = sorted((q, raw["requests"] / len(raw["quantiles_us"])) for raw in raws for q in raw["quantiles_us"])
    total = sum(weight for _, weight in pooled)

    def percentile(p: float) -> float:
        seen = 0.0
        for value, weight in pooled:
            seen += weight
            if seen >= p / 100 * total - 1e-9:
                return round(value / 1000, 1)
        return round(pooled[-1][0] / 1000, 1) if pooled else 0.0

    return {
        "paths": paths, "connections": connections, "seconds": round(seconds, 1), "requests": requests,
        "requests_per_s": round(requests / max(seconds, 1e-9), 1),
        "p50_ms": percentile(50), "p90_ms": percentile(90), "p99_ms": percentile(99),
        "max_ms": round(max(raw["max_us"] for raw in raws) / 1000, 1),
        "errors": errors, "error_total": sum(errors.values()),
    }
