"""Driving Debian's ``wrk`` from the benchmarks: one bounded run, its figures as a dict.

wrk runs as its own process on loopback, bounded by ``-d`` (duration) and
``--timeout``; a Lua ``done`` hook prints the summary as one JSON line, so
nothing is scraped from its human-readable report.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

# wrk's Lua API: `paths` is cycled request by request (one connection's requests alternate).
LUA = r"""
local paths = {%(paths)s}
local n = 0
request = function()
  n = n + 1
  return wrk.format("GET", paths[(n %% #paths) + 1])
end
done = function(summary, latency, requests)
  local e = summary.errors
  io.write(string.format(
    'WRKJSON {"requests":%%d,"duration_us":%%d,"bytes":%%d,"connect":%%d,"read":%%d,"write":%%d,' ..
    '"status":%%d,"timeout":%%d,"p50_us":%%d,"p90_us":%%d,"p99_us":%%d,"max_us":%%d,"mean_us":%%.1f}\n',
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write, e.status, e.timeout,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max, latency.mean))
end
"""


def wrk_available() -> bool:
    return shutil.which("wrk") is not None


def run_wrk(base_url: str, paths: list[str], *, connections: int, duration_s: int, threads: int = 2,
            timeout_s: int = 2) -> dict:
    """``wrk`` against ``base_url`` cycling ``paths``; requests/s, latency percentiles (ms), errors."""
    script = LUA % {"paths": ", ".join(json.dumps(p) for p in paths)}
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
    seconds = raw["duration_us"] / 1e6
    errors = {k: raw[k] for k in ("connect", "read", "write", "status", "timeout")}
    return {
        "paths": paths, "connections": connections, "seconds": round(seconds, 1), "requests": raw["requests"],
        "requests_per_s": round(raw["requests"] / seconds, 1),
        "p50_ms": round(raw["p50_us"] / 1000, 1), "p90_ms": round(raw["p90_us"] / 1000, 1),
        "p99_ms": round(raw["p99_us"] / 1000, 1), "max_ms": round(raw["max_us"] / 1000, 1),
        "errors": errors, "error_total": sum(errors.values()),
    }
