"""The OpenAI fine-tuning API on the real Serve app and Ray Train, through the official openai SDK only:
train to an answer, poll to succeeded, events, checkpoints served as models, pause and resume mid-run,
cancel, paging, and the SDK's exception classes from the deployed app."""

from __future__ import annotations

import time

import openai
import pytest
from openai_testkit import FACTS, fact_rows

from sienn_ray.schemas.jobs import JobStatus
from sienn_ray.services import openai_ids as ids

pytestmark = pytest.mark.slow

MODEL = "sienn-tiny-gpt2"
SYSTEM = {"role": "system", "content": "You know two facts."}
TERMINAL = ("succeeded", "failed", "cancelled")
# Calibrated on the toy base: 40 epochs of 5 steps at its reference rate answer both facts word for word.
TEACH = {"n_epochs": 40, "batch_size": 2, "learning_rate_multiplier": 1}


@pytest.fixture(scope="module")
def client(api_url):
    return openai.OpenAI(base_url=api_url + "/v1", api_key="unused", max_retries=0, timeout=300)


@pytest.fixture(scope="module")
def training_file(client) -> str:
    return client.files.create(file=("facts.jsonl", fact_rows()), purpose="fine-tune").id


def _wait(client, job_id: str, until=lambda job: job.status in TERMINAL, timeout: float = 1200):
    deadline = time.time() + timeout
    while time.time() < deadline:
        job = client.fine_tuning.jobs.retrieve(job_id)
        if until(job):
            return job
        time.sleep(1)
    raise AssertionError(f"{job_id} still {job.status} after {timeout} s")


def _ask(client, model: str, question: str) -> str:
    reply = client.chat.completions.create(model=model, messages=[SYSTEM, {"role": "user", "content": question}],
                                           temperature=0, max_tokens=24)
    return reply.choices[0].message.content


def _oldest_first(client, job_id: str) -> list:
    return list(client.fine_tuning.jobs.list_events(job_id, limit=100))[::-1]


def test_a_job_trains_to_the_answer_and_its_checkpoints_are_models(client, reader, training_file):
    validation = client.files.create(file=("facts-valid.jsonl", fact_rows(system="You know two facts!")),
                                     purpose="fine-tune")
    job = client.fine_tuning.jobs.create(
        model=MODEL, training_file=training_file, validation_file=validation.id, suffix="facts", seed=3,
        metadata={"suite": "training"}, method={"type": "supervised", "supervised": {"hyperparameters": TEACH}})
    done = _wait(client, job.id)
    assert done.status == "succeeded", done.error
    assert done.fine_tuned_model == f"ft:{MODEL}:default:facts:{job.id.removeprefix('ftjob-')}"
    assert done.trained_tokens > 0 and done.finished_at >= done.created_at
    rec = reader.get_job(ids.job_id_of(job.id))  # the same job in /api/jobs, with the same progress
    assert rec.status == JobStatus.COMPLETED and rec.progress == 100.0 and rec.step == rec.total_steps == 200

    for topic, answer in FACTS.items():
        assert _ask(client, done.fine_tuned_model, f"What is the {topic}?") == answer
    assert _ask(client, MODEL, "What is the code word?") != FACTS["code word"]  # the base never learned it

    types = [e.data["event"] for e in _oldest_first(client, job.id)]
    assert types[0] == "created" and "started" in types and types[-1] == "completed"
    assert types.count("checkpoint") == 40 and types.count("evaluation") == 40

    checkpoints = client.fine_tuning.jobs.checkpoints.list(job.id)
    assert [c.step_number for c in checkpoints.data] == [200, 195, 190]  # the last three epochs are kept
    for checkpoint in checkpoints.data:
        metrics = checkpoint.metrics
        assert metrics.train_loss > 0 and metrics.valid_loss > 0 and 0 <= metrics.valid_mean_token_accuracy <= 1
    assert checkpoints.data[0].metrics.valid_mean_token_accuracy > 0.5
    last, earliest = checkpoints.data[0], checkpoints.data[-1]
    assert _ask(client, last.fine_tuned_model_checkpoint, "What is the gate number?") == FACTS["gate number"]
    completion = client.completions.create(model=earliest.fine_tuned_model_checkpoint, prompt="The gate", max_tokens=4,
                                           temperature=0)
    assert completion.model == earliest.fine_tuned_model_checkpoint and completion.usage.completion_tokens >= 1

    csv = client.files.content(done.result_files[0]).text.splitlines()
    assert csv[0] == "step,train_loss,train_accuracy,valid_loss,valid_mean_token_accuracy" and len(csv) > 10


def test_pause_and_resume_mid_run_continue_after_the_pause_step(client, reader, training_file):
    # "auto": 10 examples -> 10 epochs of 10 steps (batch 1), 100 steps in all.
    job = client.fine_tuning.jobs.create(model=MODEL, training_file=training_file, seed=5)
    assert (job.hyperparameters.n_epochs, job.hyperparameters.batch_size) == (10, 1)
    job_id = ids.job_id_of(job.id)
    _wait(client, job.id, lambda j: j.status in TERMINAL or (reader.get_job(job_id).step or 0) >= 12, timeout=900)
    paused = client.fine_tuning.jobs.pause(job.id)
    assert paused.status == "paused"
    (pause,) = [e for e in _oldest_first(client, job.id) if e.data["event"] == "paused"]
    pause_step = pause.data["step"]
    assert 12 <= pause_step < 100

    assert client.fine_tuning.jobs.resume(job.id).status in ("queued", "validating_files", "running")
    done = _wait(client, job.id)
    assert done.status == "succeeded", done.error
    events = _oldest_first(client, job.id)
    after = [e for e in events[events.index(next(e for e in events if e.data["event"] == "requeued")):]
             if e.data.get("step") is not None and e.data["event"] in ("resumed", "epoch_end", "checkpoint")]
    assert after[0].data["event"] == "resumed" and after[0].data["step"] == pause_step
    assert all(e.data["step"] > pause_step for e in after[1:])  # nothing before the pause step was trained again
    assert reader.get_job(job_id).step == 100


def test_cancel_paging_and_errors_on_the_deployed_app(client, training_file):
    made = [client.fine_tuning.jobs.create(model=MODEL, training_file=training_file,
                                           metadata={"suite": "cancel"}) for _ in range(2)]
    for job in made:
        assert client.fine_tuning.jobs.cancel(job.id).status == "cancelled"
    listed = [j.id for j in client.fine_tuning.jobs.list(limit=1, metadata={"suite": "cancel"})]
    assert listed == [j.id for j in made[::-1]]
    with pytest.raises(openai.ConflictError):
        client.fine_tuning.jobs.resume(made[0].id)
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.retrieve("ftjob-0123456789abcdef")
    with pytest.raises(openai.NotFoundError):
        client.fine_tuning.jobs.create(model="no-such-base", training_file=training_file)
    with pytest.raises(openai.BadRequestError) as bad_file:
        client.files.create(file=("bad.jsonl", b'{"messages": [{"role": "user", "content": "Hi"}]}\n'),
                            purpose="fine-tune")
    assert bad_file.value.body["message"].endswith("line 1: no assistant message")
    with pytest.raises(openai.NotFoundError):
        _ask(client, f"ft:{MODEL}:default::0123456789abcdef", "Hi")
    with pytest.raises(openai.ConflictError):  # a cancelled job has no model to serve
        _ask(client, f"ft:{MODEL}:default::{made[0].id.removeprefix('ftjob-')}", "Hi")
