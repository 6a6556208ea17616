"""The service layer over an in-process registry and a real SQLite store: tenancy, ingest, submit (no Ray)."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "jobs"))
from jobs_fakes import FakeCluster  # noqa: E402

from sienn_ray.errors import DatasetNotFound, JobNotFound  # noqa: E402
from sienn_ray.jobs.client import RegistryClient  # noqa: E402
from sienn_ray.jobs.core import RegistryCore  # noqa: E402
from sienn_ray.schemas.jobs import JobStatus, StartFinetuningRequest  # noqa: E402
from sienn_ray.services import control, datasets, ingest, jobs, submit  # noqa: E402
from sienn_ray.services.context import Services  # noqa: E402
from sienn_ray.services.principal import Principal  # noqa: E402
from sienn_ray.settings import get_settings  # noqa: E402
from sienn_ray.store import ReadStore, Store  # noqa: E402
from sienn_ray.train import estimate  # noqa: E402

ACME, OTHER, ADMIN = Principal("acme", "k1"), Principal("other", "k2"), Principal("ops", "root", is_admin=True)
ROWS = "".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(4))


@pytest.fixture()
def services(tmp_path, embedded_models, monkeypatch):
    url = f"sqlite:///{tmp_path / 'db.sqlite'}"
    calibrations = []
    monkeypatch.setattr(estimate, "default_cache_file", lambda: tmp_path / "throughput.json")
    svc = Services(registry=RegistryClient.in_process(RegistryCore(Store(url), FakeCluster(cpus=4))),
                   reader=ReadStore(url), launch_calibration=calibrations.append)
    svc.calibrations = calibrations
    return svc


def _upload(services, principal, tmp_path, text=ROWS, name="d"):
    path = tmp_path / f"{name}.jsonl"
    path.write_text(text)
    return asyncio.run(ingest.ingest(services, principal, path, path.name, name))


def test_the_same_bytes_give_each_tenant_its_own_record(services, tmp_path):
    mine, again = _upload(services, ACME, tmp_path), _upload(services, ACME, tmp_path, name="again")
    theirs = _upload(services, OTHER, tmp_path)
    assert mine.dataset_id == again.dataset_id != theirs.dataset_id
    assert (mine.tenant, theirs.tenant) == ("acme", "other") and mine.sha256 == theirs.sha256
    assert [d.dataset_id for d in datasets.list_datasets(services, ACME, 50, 0).datasets] == [mine.dataset_id]
    assert datasets.list_datasets(services, ADMIN, 50, 0).total == 2
    with pytest.raises(DatasetNotFound):
        datasets.get_dataset(services, OTHER, mine.dataset_id)
    with pytest.raises(DatasetNotFound):
        asyncio.run(datasets.delete_dataset(services, OTHER, mine.dataset_id))
    assert datasets.get_dataset(services, ADMIN, mine.dataset_id).dataset_id == mine.dataset_id


def test_submit_never_loads_a_model_and_calibrates_in_the_background(services, tmp_path, monkeypatch):
    def no_model(*args, **kwargs):
        raise AssertionError("the API must not load a model")

    monkeypatch.setattr(estimate, "_measure", no_model)
    ds = _upload(services, ACME, tmp_path)
    request = StartFinetuningRequest(dataset_id=ds.dataset_id, config={"num_epochs": 1}, priority=3)
    rec = asyncio.run(submit.submit(services, ACME, request))
    assert rec.estimate_source == "static" and rec.estimated_seconds > 0 and rec.priority == 3
    assert rec.tenant == "acme" and services.calibrations == [rec.model_path]
    estimate._write_cache(tmp_path / "throughput.json", estimate._cache_key(Path(rec.model_path).resolve(), 1),
                          1234.0)
    again = asyncio.run(submit.submit(services, ACME, request))
    assert again.estimate_source == "calibration" and services.calibrations == [rec.model_path]


def test_another_tenants_job_is_the_same_404_as_a_missing_one(services, tmp_path):
    ds = _upload(services, ACME, tmp_path)
    rec = asyncio.run(submit.submit(services, ACME, StartFinetuningRequest(dataset_id=ds.dataset_id)))
    for call in (lambda: jobs.get_job(services, OTHER, rec.job_id),
                 lambda: jobs.job_events(services, OTHER, rec.job_id),
                 lambda: jobs.loss_history(services, OTHER, rec.job_id),
                 lambda: asyncio.run(control.cancel(services, OTHER, rec.job_id, wait=False)),
                 lambda: asyncio.run(control.resume(services, OTHER, rec.job_id)),
                 lambda: jobs.get_job(services, ACME, "job_nothere"),
                 lambda: asyncio.run(submit.submit(services, OTHER, StartFinetuningRequest(dataset_id=ds.dataset_id)))):
        with pytest.raises((JobNotFound, DatasetNotFound)):
            call()
    assert jobs.list_jobs(services, OTHER, None, 50, 0).total == 0
    assert jobs.list_jobs(services, ACME, None, 50, 0).jobs[0].job_id == rec.job_id
    assert jobs.metrics(services, OTHER)["total_jobs"] == 0 and jobs.metrics(services, ADMIN)["total_jobs"] == 1
    cancelled = asyncio.run(control.cancel(services, ACME, rec.job_id))
    assert cancelled.status == JobStatus.CANCELLED
    page = jobs.job_events(services, ACME, rec.job_id, after=0, limit=1)
    assert page.has_more and [e.type for e in page.events] == ["created"]


def test_an_upload_reports_its_statistics_and_the_store_keeps_them(services, tmp_path):
    ds = _upload(services, ACME, tmp_path, text=ROWS + ROWS.splitlines(keepends=True)[0])
    stats = ds.validation.statistics
    assert (stats.tokenizer, stats.max_length) == ("sienn-tiny-gpt2", 512)
    assert (stats.sampled_rows, stats.duplicate_rows) == (5, 1)
    assert 0 < stats.tokens.min <= stats.tokens.max < 512 and stats.truncated_share == 0.0
    assert datasets.get_dataset(services, ACME, ds.dataset_id).validation.statistics == stats


def test_an_upload_without_a_loadable_tokenizer_still_succeeds(services, tmp_path, monkeypatch):
    settings = dataclasses.replace(get_settings(), default_model="no-such-base")
    monkeypatch.setattr(ingest, "get_settings", lambda: settings)
    ds = _upload(services, ACME, tmp_path)
    assert ds.validation.valid and ds.validation.statistics is None
