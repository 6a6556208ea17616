"""Fine-tuning jobs through the official openai SDK, over an in-process registry (no training here):
creation with "auto" and explicit hyperparameters, the status mapping, listing, control, events,
checkpoints, results files and the SDK's exception classes. tests/openai_ft/test_training_sdk.py trains."""

from __future__ import annotations

import openai
import pytest
from openai_testkit import chat_rows

from sienn_ray import paths
from sienn_ray.schemas.jobs import JobPhase, JobStatus, RunOutcome
from sienn_ray.services import openai_ids as ids

MODEL = "sienn-tiny-gpt2"


@pytest.fixture(scope="module")
def client(local_api):
    return local_api.client()


@pytest.fixture(scope="module")
def training_file(client) -> str:
    return client.files.create(file=("jobs-train.jsonl", chat_rows(12)), purpose="fine-tune").id


@pytest.fixture(scope="module")
def validation_file(client) -> str:
    return client.files.create(file=("jobs-valid.jsonl", chat_rows(3, start=12)), purpose="fine-tune").id


def _record(local_api, job):
    return local_api.services.reader.get_job(ids.job_id_of(job.id))


def test_auto_hyperparameters_are_resolved_from_the_file_and_the_base_and_recorded(client, local_api, training_file):
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=training_file, seed=7)
    assert job.id.startswith("ftjob-") and job.status == "queued" and job.model == MODEL and job.seed == 7
    # 12 examples: 100 // 12 = 8 epochs, batch 1 (0.2% of 12, at least 1), multiplier sqrt(1/4) = 0.5.
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (8, 1)
    assert job.hyperparameters.learning_rate_multiplier == 0.5
    assert job.method.type == "supervised"
    assert job.method.supervised.hyperparameters.model_dump() == job.hyperparameters.model_dump()
    assert job.training_file == training_file and job.validation_file is None and job.fine_tuned_model is None
    rec = _record(local_api, job)  # one of our jobs underneath, as /api/jobs shows it
    assert rec.source == "openai" and rec.dataset_id == ids.dataset_id_of(training_file)
    assert (rec.config.num_epochs, rec.config.batch_size, rec.config.seed) == (8, 1, 7)
    assert rec.config.learning_rate == pytest.approx(0.5 * 5e-3) and rec.config.validation_split == 0.0
    assert rec.openai.asked.n_epochs == "auto" and rec.openai.resolved.reference_learning_rate == 5e-3


def test_explicit_hyperparameters_under_method_and_the_validation_file(client, local_api, training_file,
                                                                       validation_file):
    job = client.fine_tuning.jobs.create(
        model=MODEL, training_file=training_file, validation_file=validation_file, suffix="codes-v1",
        metadata={"team": "search", "run": "explicit"},
        method={"type": "supervised", "supervised": {"hyperparameters": {
            "n_epochs": 30, "batch_size": 2, "learning_rate_multiplier": 1.5}}})
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size,
            job.hyperparameters.learning_rate_multiplier) == (30, 2, 1.5)
    assert job.validation_file == validation_file and job.metadata == {"team": "search", "run": "explicit"}
    rec = _record(local_api, job)
    assert rec.eval_dataset_id == ids.dataset_id_of(validation_file)
    assert rec.config.learning_rate == pytest.approx(1.5 * 5e-3) and rec.openai.suffix == "codes-v1"
    legacy = client.fine_tuning.jobs.create(model=MODEL, training_file=training_file,
                                            hyperparameters={"n_epochs": 2, "batch_size": "auto"})
    assert (legacy.hyperparameters.n_epochs, legacy.hyperparameters.batch_size) == (2, 1)


def test_a_job_started_through_the_api_is_a_fine_tuning_job_too(client, local_api, training_file):
    import asyncio

    from sienn_ray.schemas.jobs import StartFinetuningRequest, TrainingConfig
    from sienn_ray.services import submit
    from sienn_ray.services.principal import DEFAULT_PRINCIPAL

    request = StartFinetuningRequest(dataset_id=ids.dataset_id_of(training_file), model_name=MODEL,
                                     config=TrainingConfig(num_epochs=5, batch_size=3, learning_rate=1e-2, seed=11))
    rec = asyncio.run(submit.submit(local_api.services, DEFAULT_PRINCIPAL, request))
    job = client.fine_tuning.jobs.retrieve(ids.fine_tuning_job_id(rec.job_id))
    assert (job.status, job.training_file, job.seed, job.metadata) == ("queued", training_file, 11, None)
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (5, 3)
    assert job.hyperparameters.learning_rate_multiplier == 2.0  # 1e-2 over the toy base's reference 5e-3
    assert job.id in [j.id for j in client.fine_tuning.jobs.list()]


def test_bad_requests_raise_the_sdks_exception_classes(client, training_file):
    jobs = client.fine_tuning.jobs
    with pytest.raises(openai.NotFoundError) as unknown_model:
        jobs.create(model="no-such-base-model", training_file=training_file)
    assert unknown_model.value.param == "model" and unknown_model.value.code == "MODEL_NOT_FOUND"
    with pytest.raises(openai.NotFoundError) as unknown_file:
        jobs.create(model=MODEL, training_file="file-0123456789abcdef")
    assert unknown_file.value.param == "training_file"
    small = client.files.create(file=("small.jsonl", chat_rows(3, start=16)), purpose="fine-tune").id
    with pytest.raises(openai.BadRequestError) as too_small:
        jobs.create(model=MODEL, training_file=small)
    assert too_small.value.param == "training_file" and "at least 10" in too_small.value.message
    with pytest.raises(openai.BadRequestError) as both:
        jobs.create(model=MODEL, training_file=training_file, hyperparameters={"n_epochs": 1},
                    method={"type": "supervised", "supervised": {"hyperparameters": {"n_epochs": 2}}})
    assert "not both" in both.value.message
    with pytest.raises(openai.BadRequestError) as bad_value:
        jobs.create(model=MODEL, training_file=training_file, hyperparameters={"batch_size": 0})
    assert bad_value.value.param == "hyperparameters.batch_size"
    with pytest.raises(openai.BadRequestError) as dpo:
        jobs.create(model=MODEL, training_file=training_file, method={"type": "dpo"})
    assert dpo.value.param.startswith("method")
    for missing in ("ftjob-0123456789abcdef", "ftjob-x", "job_0123456789abcdef"):
        with pytest.raises(openai.NotFoundError) as unknown_job:
            jobs.retrieve(missing)
        assert missing in unknown_job.value.message


def test_jobs_are_listed_newest_first_in_pages_and_by_metadata(client, training_file):
    made = [client.fine_tuning.jobs.create(model=MODEL, training_file=training_file, metadata={"batch": "list",
                                           "n": str(i)}).id for i in range(3)]
    page = client.fine_tuning.jobs.list(limit=2)
    assert [j.id for j in page.data] == made[:0:-1] and page.has_more
    following = client.fine_tuning.jobs.list(limit=2, after=page.data[-1].id)
    assert following.data[0].id == made[0]
    tagged = [j.id for j in client.fine_tuning.jobs.list(limit=1, metadata={"batch": "list"})]  # auto-paged
    assert tagged == made[::-1]
    assert [j.id for j in client.fine_tuning.jobs.list(metadata={"batch": "list", "n": "1"})] == [made[1]]
    assert client.fine_tuning.jobs.list(metadata={"batch": "none"}).data == []


def test_status_follows_the_job_and_succeeded_jobs_name_their_model(client, local_api, training_file):
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=training_file, suffix="st")
    job_id, core = ids.job_id_of(job.id), local_api.core
    assert client.fine_tuning.jobs.retrieve(job.id).status == "queued"
    for queued in local_api.services.reader.jobs_in_phases([JobPhase.QUEUED]):  # so that ours launches next
        if queued.job_id != job_id:
            core.request_stop(queued.job_id, "cancel")
    local_api.cluster.free_now = {"CPU": 4, "GPU": 0}
    try:
        core.tick()  # the registry's clock launches it: its runner's workers read the files
        assert core.get_job(job_id).phase == JobPhase.LAUNCHING
        assert client.fine_tuning.jobs.retrieve(job.id).status == "validating_files"
    finally:
        local_api.cluster.free_now = {"CPU": 0, "GPU": 0}
    token = core.get_job(job_id).lease.token
    core.report_progress(job_id, {"step": 5, "total_steps": 10, "progress": 50.0, "trained_tokens": 800}, token)
    running = client.fine_tuning.jobs.retrieve(job.id)
    assert running.status == "running" and running.estimated_finish and running.trained_tokens is None
    core.add_loss_point(job_id, {"step": 10, "epoch": 1.0, "train_loss": 1.25, "eval_loss": 1.5,
                                 "eval_token_accuracy": 0.4}, token)
    core.report_progress(job_id, {"step": 10, "trained_tokens": 1600}, token)
    core.finish_run(job_id, token, RunOutcome(result="finished", step=10, epoch=1, adapter_path="/adapter"))
    done = client.fine_tuning.jobs.retrieve(job.id)
    hex_id = job.id.removeprefix("ftjob-")
    assert done.status == "succeeded" and done.fine_tuned_model == f"ft:{MODEL}:default:st:{hex_id}"
    assert done.trained_tokens == 1600 and done.finished_at >= done.created_at and done.estimated_finish is None
    assert done.result_files == [f"file-results-{hex_id}"]
    results = client.files.retrieve(done.result_files[0])
    assert results.purpose == "fine-tune-results" and results.filename == "step_metrics.csv"
    csv = client.files.content(done.result_files[0]).text
    assert csv.splitlines() == ["step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy",
                                "10,1.25,,1.5,0.4"]
    assert [f.id for f in client.files.list(purpose="fine-tune-results")] == [results.id]
    with pytest.raises(openai.BadRequestError):
        client.files.delete(results.id)
    failed = client.fine_tuning.jobs.create(model=MODEL, training_file=training_file)
    core.finish(ids.job_id_of(failed.id), "failed", "Training failed: out of memory", error_code="TRAINING_FAILED")
    failed = client.fine_tuning.jobs.retrieve(failed.id)
    assert failed.status == "failed" and failed.error.code == "TRAINING_FAILED"
    assert "out of memory" in failed.error.message and failed.fine_tuned_model is None


def test_cancel_pause_and_resume(client, local_api, training_file):
    jobs = client.fine_tuning.jobs
    job = jobs.create(model=MODEL, training_file=training_file)
    paused = jobs.pause(job.id)
    assert paused.status == "paused" and local_api.core.get_job(ids.job_id_of(job.id)).status == JobStatus.PAUSED
    assert jobs.resume(job.id).status == "queued"
    with pytest.raises(openai.ConflictError) as not_paused:
        jobs.resume(job.id)
    assert not_paused.value.code == "JOB_NOT_READY"
    assert jobs.cancel(job.id).status == "cancelled"
    for action in (jobs.cancel, jobs.pause):
        with pytest.raises(openai.ConflictError):
            action(job.id)
    with pytest.raises(openai.NotFoundError):
        jobs.cancel("ftjob-0123456789abcdef")


def test_a_file_in_use_cannot_be_deleted(client, training_file, validation_file):
    client.fine_tuning.jobs.create(model=MODEL, training_file=training_file, validation_file=validation_file)
    for file_id in (training_file, validation_file):
        with pytest.raises(openai.ConflictError) as info:
            client.files.delete(file_id)
        assert info.value.code == "DATASET_IN_USE"


def test_events_newest_first_in_pages(client, local_api, training_file):
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=training_file)
    client.fine_tuning.jobs.pause(job.id)
    client.fine_tuning.jobs.resume(job.id)
    events = client.fine_tuning.jobs.list_events(job.id)
    assert [e.data["event"] for e in events.data] == ["requeued", "paused", "created"]
    assert events.data[0].object == "fine_tuning.job.event" and events.data[0].level == "info"
    assert events.data[-1].message == "Created fine-tuning job" and not events.has_more
    one = client.fine_tuning.jobs.list_events(job.id, limit=1)
    assert one.has_more and [e.id for e in client.fine_tuning.jobs.list_events(job.id, limit=1)] == \
        [e.id for e in events.data]  # the SDK pages with `after`
    with pytest.raises(openai.BadRequestError):
        client.fine_tuning.jobs.list_events(job.id, after="not-an-event")


def _checkpoint_on_disk(job_id: str, step: int) -> None:
    folder = paths.job_checkpoint_adapter(job_id, step)
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("adapter_config.json", "adapter_model.safetensors", "template.json"):
        (folder / name).write_text("{}")


def test_checkpoints_listed_with_their_metrics_while_on_disk(client, local_api, training_file):
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=training_file, suffix="ck")
    job_id, core = ids.job_id_of(job.id), local_api.core
    rec = core.get_job(job_id)
    token = rec.last_token
    for step in (4, 8, 12):
        core.add_event(job_id, "checkpoint", {"step": step, "epoch": step // 4, "train_loss": 2.0 / step,
                                              "eval_loss": 3.0 / step, "eval_token_accuracy": step / 20}, token)
    for step in (8, 12):  # Ray Train kept the newest two
        _checkpoint_on_disk(job_id, step)
    listed = client.fine_tuning.jobs.checkpoints.list(job.id)
    assert [c.step_number for c in listed.data] == [12, 8] and not listed.has_more
    newest = listed.data[0]
    assert newest.id == f"ftckpt_{job.id.removeprefix('ftjob-')}_12" and newest.fine_tuning_job_id == job.id
    assert newest.fine_tuned_model_checkpoint == f"{ids.fine_tuned_model(rec)}:ckpt-step-12"
    assert newest.metrics.step == 12 and newest.metrics.train_loss == pytest.approx(2.0 / 12)
    assert newest.metrics.valid_loss == pytest.approx(3.0 / 12) and newest.metrics.valid_mean_token_accuracy == 0.6
    assert [c.step_number for c in client.fine_tuning.jobs.checkpoints.list(job.id, limit=1)] == [12, 8]
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.checkpoints.list("ftjob-0123456789abcdef")
