"""JobBook over a real SQLite store: state changes persist and survive reopening (no Ray)."""

from __future__ import annotations

import pytest

from sienn_ray.errors import DatasetInUse, DatasetNotFound, JobNotFound, JobStateConflict
from sienn_ray.jobs.book import JobBook
from sienn_ray.jobs.book import relaunch_decision
from sienn_ray.schemas.common import new_id, utcnow
from sienn_ray.schemas.datasets import DatasetRecord, DatasetValidation
from sienn_ray.schemas.exports import ExportRecord
from sienn_ray.schemas.jobs import JobRecord, JobStatus, TrainingConfig
from sienn_ray.store import Store


def _dataset(i: int = 0) -> DatasetRecord:
    return DatasetRecord(
        dataset_id=f"ds_{i:016x}", filename="d.jsonl", format="jsonl", total_samples=3, size_bytes=10,
        preview=[], validation=DatasetValidation(valid=True, columns=["instruction", "output"], null_counts={}),
        uploaded_at=utcnow(), sha256="0" * 64,
    )


def _job(dataset_id: str) -> JobRecord:
    now = utcnow()
    return JobRecord(job_id=new_id("job"), model_name="m", model_path="/m", dataset_id=dataset_id,
                     config=TrainingConfig(), total_epochs=3, created_at=now, updated_at=now)


@pytest.fixture()
def book(tmp_path):
    store = Store(f"sqlite:///{tmp_path / 'db.sqlite'}")
    yield JobBook(store)
    store.close()


def test_job_lifecycle_persists_across_reopen(book, tmp_path):
    book.put_dataset(_dataset())
    job = book.create_job(_job(_dataset().dataset_id))
    answer = book.report_progress(job.job_id, {"step": 5, "total_steps": 10, "progress": 50.0,
                                               "metrics": {"train_loss": 1.5, "learning_rate": 1e-3}})
    assert answer == {"cancel_requested": False}
    book.add_loss_point(job.job_id, {"step": 5, "epoch": 1.0, "train_loss": 1.5})
    book.finish(job.job_id, JobStatus.COMPLETED, "done", adapter_path="/a", metrics={"eval_loss": 1.2})
    reopened = JobBook(Store(f"sqlite:///{tmp_path / 'db.sqlite'}"))
    rec = reopened.get_job(job.job_id)
    assert rec.status == JobStatus.COMPLETED and rec.progress == 100.0 and rec.step == 10
    assert rec.metrics.train_loss == 1.5 and rec.metrics.eval_loss == 1.2
    assert [e.type for e in reopened.store.list_events(job.job_id)] == ["created", "started", "completed"]
    assert reopened.store.loss_history(job.job_id)[0].train_loss == 1.5


def test_finish_is_idempotent_and_terminal(book):
    book.put_dataset(_dataset())
    job = book.create_job(_job(_dataset().dataset_id))
    book.finish(job.job_id, JobStatus.FAILED, "boom", error_code="TRAINING_FAILED")
    again = book.finish(job.job_id, JobStatus.COMPLETED, "late")
    assert again.status == JobStatus.FAILED and again.message == "boom"
    assert book.report_progress(job.job_id, {"step": 1}) == {"cancel_requested": True}
    with pytest.raises(JobStateConflict):
        book.request_cancel(job.job_id)


def test_dataset_in_use_cannot_be_deleted(book):
    book.put_dataset(_dataset())
    job = book.create_job(_job(_dataset().dataset_id))
    with pytest.raises(DatasetInUse):
        book.delete_dataset(_dataset().dataset_id)
    book.finish(job.job_id, JobStatus.COMPLETED, "ok")
    book.delete_dataset(_dataset().dataset_id)
    with pytest.raises(DatasetNotFound):
        book.get_dataset(_dataset().dataset_id)


def test_unknown_ids_raise_domain_errors(book):
    with pytest.raises(JobNotFound):
        book.get_job("job_0123456789abcdef")
    with pytest.raises(DatasetNotFound):
        book.create_job(_job("ds_0000000000000099"))


def test_list_and_metrics(book):
    for i in range(3):
        book.put_dataset(_dataset(i))
    jobs = [book.create_job(_job(_dataset(i).dataset_id)) for i in range(3)]
    book.finish(jobs[0].job_id, JobStatus.COMPLETED, "ok")
    items, total = book.list_jobs("pending", 10, 0)
    assert total == 2 and {j.job_id for j in items} == {jobs[1].job_id, jobs[2].job_id}
    page, total = book.list_jobs(None, 1, 1)
    assert total == 3 and len(page) == 1
    m = book.metrics()
    assert m["total_jobs"] == 3 and m["completed_jobs"] == 1 and m["active_jobs"] == 2 and m["total_datasets"] == 3


def test_exports_round_trip(book):
    now = utcnow()
    rec = ExportRecord(export_id=new_id("exp"), job_id="job_0123456789abcdef", format="gguf", quantization="q8_0",
                       download_url="/x", estimated_time="1 minutes", created_at=now, updated_at=now)
    book.put_export(rec)
    book.update_export(rec.export_id, {"status": "completed", "total_size_bytes": 42})
    found = book.store.find_export(rec.job_id, "gguf", "q8_0")
    assert found.status == "completed" and found.total_size_bytes == 42
    assert book.store.find_export(rec.job_id, "gguf", "q4_0") is None


def test_relaunch_decision():
    rec = _job("ds_0000000000000000")
    assert relaunch_decision(rec, 3)[0] == "relaunch"
    rec.last_checkpoint, rec.step = "/ckpt", 7
    action, reason = relaunch_decision(rec, 3)
    assert action == "relaunch" and "step 7" in reason
    rec.attempts = 4
    assert relaunch_decision(rec, 3)[0] == "fail"
    rec.attempts, rec.cancel_requested = 0, True
    assert relaunch_decision(rec, 3)[0] == "fail"
