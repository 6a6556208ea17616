"""One real stack of our own (the ops helpers of `make up`, SIENN_HOME on a 64 MB tmpfs where root may mount
one): the disk full and the database read-only during an upload and an export, then the Ray head killed
hard mid-training and the stack started again.

Storage: a clear 507 / 503 in the spec's error format, nothing half-written (no dataset record without its
files or files without a record, no export marked completed without its files, no leftover temp folders),
and the same requests work once space is back or the file is writable again.
Head: every process of the head's session gets SIGKILL at once; `up` again; the job resumes from its last
checkpoint (not step 0), once, and completes.
"""

from __future__ import annotations

import io
import json
import re
import time
import zipfile

import pytest
from chaos_kit import wait_for
from helpers import demo_config
from stack_kit import Stack
from storage_kit import fill_disk, mount_tmpfs, set_immutable, unmount

from sienn_ray.data.demo import demo_records

TMPFS_MB = 64
QUICK = {"num_epochs": 2, "batch_size": 4, "max_length": 64, "learning_rate": 0.005}
LONG = demo_config() | {"num_epochs": 40, "checkpoint_every_steps": 20}
pytestmark = [pytest.mark.slow, pytest.mark.timeout(2400)]


@pytest.fixture(scope="module")
def stack(tmp_path_factory, embedded_models, sienn_home):
    tmp = tmp_path_factory.mktemp("stack")
    home = tmp / "home"
    on_tmpfs = mount_tmpfs(home, TMPFS_MB)
    stack = Stack(tmp, home, sienn_home / "models")
    stack.on_tmpfs = on_tmpfs
    try:
        stack.up_seconds = stack.up()
        print(f"\nstack up in {stack.up_seconds:.0f} s (SIENN_HOME on a {TMPFS_MB} MB tmpfs: {on_tmpfs})")
        yield stack
    finally:
        stack.down()
        if on_tmpfs:
            unmount(home)


def _rows(n: int, tag: str) -> bytes:
    return "".join(json.dumps({"instruction": f"{tag} {i}", "output": f"answer {i} " + "x" * 40}) + "\n"
                   for i in range(n)).encode()


def _upload(stack: Stack, data: bytes, name: str = "data.jsonl"):
    return stack.post("/api/upload-dataset", files={"file": (name, data)})


def _spec_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text
    body = resp.json()
    assert body["error_code"] == code and body["detail"] and body["timestamp"].endswith("Z"), body
    return body


def _leftovers(stack: Stack) -> list[str]:
    """Half-built folders: staging uploads, dataset builds, export temp folders."""
    home = stack.home
    found = [p.name for p in (home / "tmp").glob("*")] if (home / "tmp").exists() else []
    found += [p.name for p in (home / "datasets").glob(".*")] if (home / "datasets").exists() else []
    found += [str(p) for p in (home / "exports").glob("*/.*")] if (home / "exports").exists() else []
    return found


def _datasets(stack: Stack) -> set[str]:
    return {d["dataset_id"] for d in stack.get("/api/datasets?limit=1000").json()["datasets"]}


def _dataset_dirs(stack: Stack) -> set[str]:
    folder = stack.home / "datasets"
    return {p.name for p in folder.iterdir() if not p.name.startswith(".")} if folder.exists() else set()


def _export_settled(stack: Stack, export_id: str) -> dict:
    return wait_for(lambda: (lambda r: r if r["status"] != "processing" else None)(
        stack.get(f"/api/exports/{export_id}").json()), 600, f"export {export_id} settled", every_s=1.0)


def _check_export_whole(stack: Stack, job_id: str, record: dict) -> None:
    """A completed export's every file is on disk with its size, and its ZIP downloads whole."""
    assert record["status"] == "completed" and record["files"], record
    resp = stack.get(f"/api/download-model/{job_id}?format=pytorch")
    assert resp.status_code == 200, resp.text
    names = {n.split("/", 1)[1] for n in zipfile.ZipFile(io.BytesIO(resp.content)).namelist()}
    assert names == {f["name"] for f in record["files"]}


@pytest.fixture(scope="module")
def trained(stack):
    """The demo dataset and a completed quick job on the stack (what the export tests export)."""
    data = "".join(json.dumps(r) + "\n" for r in demo_records()).encode()
    dataset = _upload(stack, data, "demo.jsonl").json()["dataset_id"]
    job = stack.post("/api/start-finetuning", json={"dataset_id": dataset, "config": QUICK}).json()["job_id"]
    status = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed", "cancelled") else None)(
        stack.get(f"/api/training-status/{job}").json()), 900, "quick job finished", every_s=1.0)
    assert status["status"] == "completed", status
    return {"dataset_id": dataset, "job_id": job}


def test_a_full_disk_during_an_upload_and_an_export_is_507_and_leaves_nothing_half_written(stack, trained):
    if not stack.on_tmpfs:
        pytest.skip("needs root to mount a tmpfs as SIENN_HOME")
    datasets, dirs = _datasets(stack), _dataset_dirs(stack)
    filler = fill_disk(stack.home, leave_bytes=512 * 1024)
    try:
        body = _spec_error(_upload(stack, _rows(40_000, "full")), 507, "INSUFFICIENT_STORAGE")  # ~3 MB
        assert "No space left" in body["detail"], body
        assert _datasets(stack) == datasets and _dataset_dirs(stack) == dirs and not _leftovers(stack)

        resp = stack.post(f"/api/export-model/{trained['job_id']}", json={"format": "pytorch"})  # ~3.5 MB
        if resp.status_code == 507:  # the database itself had no room for the record: nothing stored
            _spec_error(resp, 507, "INSUFFICIENT_STORAGE")
            assert stack.get(f"/api/jobs/{trained['job_id']}/exports").json()["exports"] == []
        else:
            assert resp.status_code == 200, resp.text
            failed = _export_settled(stack, resp.json()["export_id"])
            assert (failed["status"], failed["error_code"]) == ("failed", "INSUFFICIENT_STORAGE"), failed
            assert "No space left" in failed["message"], failed
        assert not (stack.home / "exports" / trained["job_id"] / "pytorch").exists() and not _leftovers(stack)
        _spec_error(stack.get(f"/api/download-model/{trained['job_id']}?format=pytorch"), 404, "MODEL_NOT_FOUND")
    finally:
        filler.unlink()
    resp = _upload(stack, _rows(40_000, "full"))
    assert resp.status_code == 200 and (stack.home / "datasets" / resp.json()["dataset_id"] / "data.jsonl").is_file()
    resp = stack.post(f"/api/export-model/{trained['job_id']}", json={"format": "pytorch"})
    assert resp.status_code == 200, resp.text
    _check_export_whole(stack, trained["job_id"], _export_settled(stack, resp.json()["export_id"]))


def test_a_read_only_database_during_an_upload_and_an_export_is_503_and_leaves_nothing(stack, trained):
    db = stack.home / "sienn.db"
    if not set_immutable(db, True):
        pytest.skip("needs chattr +i on SIENN_HOME's file system (root)")
    datasets, dirs = _datasets(stack), _dataset_dirs(stack)
    exports = stack.get(f"/api/jobs/{trained['job_id']}/exports").json()["exports"]
    try:
        stack.restart_registry()  # it reconnects: the file now opens read-only
        _spec_error(_upload(stack, _rows(2_000, "read-only")), 503, "STORAGE_UNAVAILABLE")
        assert _datasets(stack) == datasets and _dataset_dirs(stack) == dirs and not _leftovers(stack)
        _spec_error(stack.post(f"/api/export-model/{trained['job_id']}", json={"format": "gguf"}), 503,
                    "STORAGE_UNAVAILABLE")
        assert stack.get(f"/api/jobs/{trained['job_id']}/exports").json()["exports"] == exports
        assert stack.get("/health").status_code == 200 and stack.get("/api/jobs").status_code == 200
    finally:
        set_immutable(db, False)
    assert _upload(stack, _rows(2_000, "read-only")).status_code == 200  # the failed write reconnected
    resp = stack.post(f"/api/export-model/{trained['job_id']}", json={"format": "gguf"})
    assert resp.status_code == 200, resp.text
    assert _export_settled(stack, resp.json()["export_id"])["status"] == "completed"


def test_the_head_killed_hard_mid_training_resumes_from_its_last_checkpoint_after_up(stack, trained):
    job = stack.post("/api/start-finetuning", json={"dataset_id": trained["dataset_id"], "config": LONG}).json()
    job_id = job["job_id"]
    before = wait_for(lambda: (lambda s: s if s.get("last_checkpoint") and s["step"] >= 30 else None)(
        stack.get(f"/api/training-status/{job_id}").json()), 900, "a checkpoint past step 30", every_s=0.5)
    checkpoint_step = int(re.search(r"checkpoint_(\d+)", before["last_checkpoint"]).group(1))
    # Rank 0 reports a checkpoint as soon as it is written; Ray Train's controller registers it at its next
    # poll of the workers (every RAY_TRAIN_HEALTH_CHECK_INTERVAL_S). Killed before that, the
    # run resumes from the one before, as a fast machine showed.
    time.sleep(6.0)
    killed = stack.crash()
    restarted_at = time.monotonic()
    up_seconds = stack.up()
    done = wait_for(lambda: (lambda s: s if s["status"] in ("completed", "failed", "cancelled") else None)(
        stack.get(f"/api/training-status/{job_id}").json()), 1200, "the job finished after the restart", every_s=1.0)
    events = stack.get(f"/api/jobs/{job_id}/events").json()["events"]
    resumed = [e["data"]["step"] for e in events if e["type"] == "resumed"]
    print(f"\nhead killed (SIGKILL to {killed} processes) at step {before['step']}, last checkpoint at step "
          f"{checkpoint_step}; up again in {up_seconds:.0f} s; resumed from step {resumed}; "
          f"{done['status']} at step {done['step']}/{done['total_steps']} "
          f"{time.monotonic() - restarted_at:.0f} s after the kill")
    assert done["status"] == "completed" and done["step"] == done["total_steps"], done
    # Once, from a checkpoint at or after the last one seen before the kill (the trainer runs ahead of its
    # throttled reports, so one more may have landed in between), never from step 0.
    every = LONG["checkpoint_every_steps"]
    assert len(resumed) == 1 and resumed[0] >= checkpoint_step > 0 and resumed[0] % every == 0, \
        (resumed, checkpoint_step, before["step"])
    kinds = [e["type"] for e in events]
    assert kinds.count("launched") == 2 and kinds.count("lease_expired") == 1 and kinds.count("completed") == 1, kinds
