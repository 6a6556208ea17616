"""The OpenAI face's pure rules: "auto" hyperparameters, ids and model names, the status mapping (no I/O)."""

from __future__ import annotations

import pytest

from sienn_ray.schemas.common import utcnow
from sienn_ray.schemas.jobs import JobPhase, JobRecord, JobStatus, TrainingConfig
from sienn_ray.schemas.openai_jobs import Hyperparameters, OpenAIJobSpec
from sienn_ray.services import openai_auto
from sienn_ray.services import openai_ids as ids
from sienn_ray.services.openai_views import job_status


@pytest.mark.parametrize("examples, epochs", [(2, 25), (5, 20), (12, 8), (34, 3), (1000, 3), (10_000, 2),
                                              (100_000, 1)])
def test_auto_epochs_follow_the_cookbooks_rule(examples, epochs):
    assert openai_auto.auto_epochs(examples) == epochs


@pytest.mark.parametrize("examples, batch", [(10, 1), (1000, 2), (10_000, 20), (1_000_000, 256)])
def test_auto_batch_size_is_a_fifth_of_a_percent_capped(examples, batch):
    assert openai_auto.auto_batch_size(examples) == batch


@pytest.mark.parametrize("batch, multiplier", [(1, 0.5), (4, 1.0), (9, 1.5), (16, 2.0), (256, 2.0)])
def test_auto_multiplier_grows_with_the_batch_size(batch, multiplier):
    assert openai_auto.auto_multiplier(batch) == multiplier


def test_the_reference_rate_depends_on_the_bases_size_and_the_asked_values_win():
    assert openai_auto.reference_learning_rate(800_000) == 5e-3  # the random toy models
    assert openai_auto.reference_learning_rate(135_000_000) == 2e-3  # SmolLM2-135M
    assert openai_auto.reference_learning_rate(7_000_000_000) == 1e-4
    resolved = openai_auto.resolve(Hyperparameters(n_epochs=4, learning_rate_multiplier=3), 1000, 135_000_000)
    assert (resolved.n_epochs, resolved.batch_size, resolved.learning_rate_multiplier) == (4, 2, 3)
    assert resolved.learning_rate == pytest.approx(6e-3)


def _job(**fields) -> JobRecord:
    now = utcnow()
    return JobRecord(job_id="job_0123456789abcdef", tenant="acme", model_name="sienn-tiny-gpt2", model_path="/m",
                     dataset_id="ds_fedcba9876543210", config=TrainingConfig(), total_epochs=3, created_at=now,
                     updated_at=now, **fields)


def test_ids_map_both_ways_and_name_nothing_else():
    assert ids.file_id("ds_fedcba9876543210") == "file-fedcba9876543210"
    assert ids.dataset_id_of("file-fedcba9876543210") == "ds_fedcba9876543210"
    assert ids.fine_tuning_job_id("job_0123456789abcdef") == "ftjob-0123456789abcdef"
    assert ids.job_id_of("ftjob-0123456789abcdef") == "job_0123456789abcdef"
    assert ids.step_of_checkpoint(ids.checkpoint_id("job_0123456789abcdef", 40), "job_0123456789abcdef") == 40
    assert ids.step_of_checkpoint("ftckpt_0123456789abcdef_40", "job_00000000000000ff") is None
    assert ids.seq_of_event(ids.event_id(17)) == 17
    for nonsense in ("file-../etc", "file-XYZ", "ds_fedcba9876543210", "", "file-fedcba9876543210/x"):
        assert ids.dataset_id_of(nonsense) is None
    assert ids.job_id_of("ftjob-0123456789abcdef\n") is None and ids.job_of_results_file("file-results-zz") is None


def test_fine_tuned_model_names_round_trip():
    plain = _job()
    assert ids.fine_tuned_model(plain) == "ft:sienn-tiny-gpt2:acme::0123456789abcdef"
    spec = OpenAIJobSpec(suffix="v2", asked=Hyperparameters(),
                         resolved=openai_auto.resolve(Hyperparameters(), 10, 1000))
    named = _job(openai=spec)
    assert ids.fine_tuned_model(named) == "ft:sienn-tiny-gpt2:acme:v2:0123456789abcdef"
    assert ids.parse_model(ids.fine_tuned_model(named)) == ("job_0123456789abcdef", None)
    assert ids.parse_model(ids.checkpoint_model(named, 12)) == ("job_0123456789abcdef", 12)
    for nonsense in ("sienn-tiny-gpt2", "ft:", "ft:x:acme:v2:nothex", "ft:x:acme:v2:0123456789abcdef:ckpt-step-"):
        assert ids.parse_model(nonsense) is None


@pytest.mark.parametrize("status, phase, expected", [
    (JobStatus.PENDING, JobPhase.QUEUED, "queued"), (JobStatus.PENDING, JobPhase.LAUNCHING, "validating_files"),
    (JobStatus.RUNNING, JobPhase.TRAINING, "running"), (JobStatus.RUNNING, JobPhase.STOPPING, "running"),
    (JobStatus.PAUSED, JobPhase.PAUSED, "paused"), (JobStatus.COMPLETED, JobPhase.DONE, "succeeded"),
    (JobStatus.FAILED, JobPhase.DONE, "failed"), (JobStatus.CANCELLED, JobPhase.DONE, "cancelled"),
])
def test_status_mapping(status, phase, expected):
    assert job_status(_job(status=status, phase=phase)) == expected
