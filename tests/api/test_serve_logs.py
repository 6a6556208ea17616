"""A Serve replica's log lines are written once, to Serve's own files (settings.WORKER_ENV), not again to
the worker's stderr, which Ray's log monitor reads and ships line by line (real Ray + Serve)."""

from __future__ import annotations

import time
import uuid
from pathlib import Path

import httpx


def _files_with(folder: Path, marker: bytes) -> set[str]:
    return {str(path.relative_to(folder)) for path in folder.rglob("*")
            if path.is_file() and marker in path.read_bytes()}


def test_an_access_line_is_written_once_to_serves_replica_log(api_url, ray_logs_dir):
    request_id = f"log-probe-{uuid.uuid4().hex}"
    assert httpx.get(f"{api_url}/api/jobs?limit=1", headers={"X-Request-Id": request_id}, timeout=30).status_code == 200
    deadline, found = time.time() + 30, set()
    while time.time() < deadline and not found:
        found = _files_with(ray_logs_dir, request_id.encode())
        time.sleep(0.5)
    time.sleep(2)  # the log monitor's copy, if any, lands after the file's
    found = _files_with(ray_logs_dir, request_id.encode())
    assert found and all(name.startswith("serve/replica_sienn_ApiIngress") for name in found), found
    (name,) = found
    assert (ray_logs_dir / name).read_bytes().count(request_id.encode()) == 1
