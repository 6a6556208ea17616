"""The store on its own: additive migration of an older database, export lookups (no Ray)."""

from __future__ import annotations

import sqlalchemy as sa
from jobs_fakes import job

from sienn_ray.jobs.runner import outcome_of
from sienn_ray.schemas.common import new_id, utcnow
from sienn_ray.schemas.exports import ExportRecord
from sienn_ray.schemas.jobs import JobPhase
from sienn_ray.store import ReadStore, Store

OLD_JOBS = """CREATE TABLE jobs (job_id VARCHAR(64) PRIMARY KEY, status VARCHAR(16) NOT NULL,
    dataset_id VARCHAR(64) NOT NULL, created_at VARCHAR(40) NOT NULL, record TEXT NOT NULL)"""


def test_an_older_database_gains_the_new_columns_and_its_pending_jobs_join_the_queue(tmp_path):
    url = f"sqlite:///{tmp_path / 'old.db'}"
    pending, running = job(), job()
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.exec_driver_sql(OLD_JOBS)
        for rec, status in ((pending, "pending"), (running, "running")):
            conn.exec_driver_sql("INSERT INTO jobs VALUES (?, ?, ?, ?, ?)",
                                 (rec.job_id, status, rec.dataset_id, rec.created_at.isoformat(),
                                  rec.model_dump_json(exclude={"tenant", "phase", "priority"})))
    engine.dispose()
    store = Store(url)
    queued = store.jobs_in_phases([JobPhase.QUEUED])
    assert [r.job_id for r in queued] == [pending.job_id] and store.queue_position(queued[0]) == 1
    assert [r.job_id for r in store.jobs_in_phases([JobPhase.TRAINING])] == [running.job_id]
    assert store.list_jobs("default")[1] == 2


def test_find_export_matches_format_and_quantization(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db'}")
    now = utcnow()
    for fmt, quant in (("pytorch", None), ("gguf", "q8_0")):
        store.put_export(ExportRecord(export_id=new_id("exp"), job_id="job_0123456789abcdef", format=fmt,
                                      quantization=quant, download_url="/x", estimated_time="1 minutes",
                                      created_at=now, updated_at=now))
    reader = ReadStore(store.url)
    assert reader.find_export("job_0123456789abcdef", "pytorch", None).format == "pytorch"
    assert reader.find_export("job_0123456789abcdef", "gguf", "q8_0").quantization == "q8_0"
    assert reader.find_export("job_0123456789abcdef", "gguf", "q4_0") is None
    assert reader.find_export("job_0123456789abcdef", "gguf", "q8_0", tenant="other") is None


def test_a_runs_outcome_comes_from_its_last_metrics(tmp_path):
    (tmp_path / "adapter_config.json").write_text("{}")
    (tmp_path / "adapter_model.safetensors").write_bytes(b"")
    done = outcome_of({"step": 12, "epoch": 3, "stopped": "early_stopping", "train_loss": 0.5}, str(tmp_path))
    assert (done.result, done.step, done.epoch, done.metrics) == ("finished", 12, 3, {"train_loss": 0.5})
    assert done.message.startswith("Stopped early")
    assert outcome_of({"step": 4, "stopped": "cancelled"}, str(tmp_path)).result == "stopped"
    assert outcome_of({"step": 4}, str(tmp_path / "missing")).result == "failed"
