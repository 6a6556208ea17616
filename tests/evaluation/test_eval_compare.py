"""The ids list of GET /api/jobs/compare, and which rows a job is evaluated on."""

from __future__ import annotations

import re

import pytest

from sienn_ray.errors import BadRequest
from sienn_ray.evaluation.compare import parse_job_ids
from sienn_ray.schemas.comparison import COMPARE_IDS_PATTERN
from sienn_ray.evaluation.plan import spec_for_job
from sienn_ray.schemas.common import utcnow
from sienn_ray.schemas.jobs import JobRecord, TrainingConfig
from sienn_ray.train.inputs import split_rows

from evaluation_fixtures import write_jsonl


def test_ids_keep_their_order_and_lose_surrounding_spaces():
    assert parse_job_ids("job_b, job_a ,job_c") == ["job_b", "job_a", "job_c"]


def test_a_job_named_twice_is_compared_once():
    assert parse_job_ids("job_b,job_a,job_b") == ["job_b", "job_a"]


@pytest.mark.parametrize("raw", ["job_a", " job_a , job_b", "job_a,job_a", ",".join(["j"] * 20), "0,\x85,G"])
def test_the_openapi_pattern_admits_what_the_parser_accepts(raw):
    assert re.fullmatch(COMPARE_IDS_PATTERN, raw) and parse_job_ids(raw)


@pytest.mark.parametrize("raw", ["", " ", "a,", ",a", "a,,b", "a,\t ,b", ",".join(["j"] * 21)])
def test_the_openapi_pattern_refuses_what_the_parser_refuses(raw):
    assert not re.fullmatch(COMPARE_IDS_PATTERN, raw)
    with pytest.raises(BadRequest):
        parse_job_ids(raw)


@pytest.mark.parametrize("raw, problem", [
    ("", "at least one"), (" , ", "at least one"), ("job_a,,job_b", "empty entry"), ("job_a,", "empty entry"),
    (",".join(f"job_{i:08x}" for i in range(21)), "at most 20"),
])
def test_malformed_lists_are_refused_with_every_problem(raw, problem):
    with pytest.raises(BadRequest) as err:
        parse_job_ids(raw)
    assert any(problem in e for e in err.value.errors), err.value.errors


def test_several_problems_are_listed_together():
    with pytest.raises(BadRequest) as err:
        parse_job_ids(",".join(["job_a"] * 22) + ",")
    assert len(err.value.errors) == 2


def _job(config: TrainingConfig) -> JobRecord:
    now = utcnow()
    return JobRecord(job_id="job_00000000000000aa", model_name="m", model_path="/models/m", dataset_id="ds_00000000",
                     config=config, total_epochs=1, created_at=now, updated_at=now, adapter_path="/jobs/a/adapter")


def test_a_job_is_evaluated_on_exactly_the_rows_training_held_out(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": str(i), "input": "", "output": "o"} for i in range(60)])
    config = TrainingConfig(seed=7, max_length=64, batch_size=2)
    spec = spec_for_job(_job(config), data, eval_samples=5)
    assert spec.rows == split_rows(60, 0.1, 7)[1] and len(spec.rows) == 6 and spec.source == "validation_split"
    assert (spec.max_length, spec.batch_size, spec.eval_samples, spec.adapter_path) == (64, 2, 5, "/jobs/a/adapter")
    assert spec_for_job(_job(config.model_copy(update={"validation_split": 0.5})), data).rows == \
        split_rows(60, 0.5, 7)[1]


def test_small_datasets_have_no_split_unless_an_eval_dataset_is_given(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"instruction": str(i), "input": "", "output": "o"} for i in range(30)])
    assert spec_for_job(_job(TrainingConfig()), data) is None
    spec = spec_for_job(_job(TrainingConfig()), data, eval_dataset_path=tmp_path / "eval.jsonl")
    assert spec.rows is None and spec.source == "eval_dataset" and spec.dataset_path.endswith("eval.jsonl")
