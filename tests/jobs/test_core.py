"""RegistryCore over a real SQLite store, a fake cluster and a fake clock (no Ray)."""

from __future__ import annotations

import pytest
from jobs_fakes import POLICY, dataset, finished, job, start_training, types

from sienn_ray.errors import DatasetInUse, DatasetNotFound, JobNotFound, JobStateConflict, ResourcesUnavailable
from sienn_ray.jobs.core import RegistryCore
from sienn_ray.schemas.jobs import JobPhase, JobStatus, RunOutcome
from sienn_ray.store import ReadStore, Store


def test_lifecycle_persists_and_reads_back_from_a_read_only_store(env):
    core, cluster, clock, url = env
    job_id, token = start_training(core, cluster, job(num_epochs=3))
    answer = core.report_progress(job_id, {"step": 5, "progress": 25.0, "metrics": {"train_loss": 1.5}}, token)
    assert answer == {"cancel_requested": False}
    core.add_loss_point(job_id, {"step": 5, "epoch": 1.0, "train_loss": 1.5}, token)
    core.finish_run(job_id, token, finished(20, 3, metrics={"eval_loss": 1.2}))
    reader = ReadStore(url)
    rec = reader.get_job(job_id)
    assert rec.status == JobStatus.COMPLETED and rec.phase == JobPhase.DONE and rec.lease is None
    assert rec.step == 20 and rec.progress == 100.0 and rec.current_epoch == 3 and rec.adapter_path == "/adapter"
    assert rec.metrics.train_loss == 1.5 and rec.metrics.eval_loss == 1.2
    assert types(url, job_id) == ["created", "launched", "started", "completed"]
    assert reader.loss_history(job_id)[0].train_loss == 1.5
    with pytest.raises(Exception, match="readonly|read-only|query_only"):
        with reader.engine.begin() as conn:
            conn.exec_driver_sql("DELETE FROM jobs")


def test_finishing_keeps_where_the_run_really_stopped(env):
    core, cluster, _, _ = env
    job_id, token = start_training(core, cluster, job(num_epochs=5))
    core.report_progress(job_id, {"step": 12, "current_epoch": 3, "progress": 60.0}, token)
    rec = core.finish_run(job_id, token, finished(12, 3, message="Stopped early (no eval improvement)"))
    assert rec.status == JobStatus.COMPLETED and rec.message.startswith("Stopped early")
    assert (rec.step, rec.current_epoch, rec.progress) == (12, 3, 60.0)
    # a late report of the finished trainer changes nothing but its last checkpoint
    core.report_progress(job_id, {"step": 20, "progress": 100.0, "last_checkpoint": "/ckpt12"}, token)
    rec = core.get_job(job_id)
    assert (rec.step, rec.progress, rec.last_checkpoint) == (12, 60.0, "/ckpt12")


def test_every_launch_counts_and_the_limit_fails_the_job_with_the_reason(env):
    core, cluster, clock, url = env
    rec = core.submit_job(job())
    for _ in range(POLICY.max_launches):
        clock.advance(POLICY.launch_grace_s + 1)  # the runner never heartbeats
        core.tick()
    rec = core.get_job(rec.job_id)
    assert cluster.tokens(rec.job_id) == [1, 2, 3]
    assert rec.status == JobStatus.FAILED and rec.error_code == "TRAINING_FAILED"
    assert "3 times" in rec.message and rec.attempts == 3
    assert [h for _, _, h in cluster.launched] == cluster.stopped  # each lost runner was killed
    assert types(url, rec.job_id).count("lease_expired") == 3


def test_a_silent_runner_loses_the_lease_and_its_trainer_is_fenced_off(env):
    core, cluster, clock, _ = env
    job_id, old = start_training(core, cluster, job())
    for _ in range(3):  # heartbeats keep the lease
        clock.advance(POLICY.lease_ttl_s / 2)
        assert core.heartbeat(job_id, old) == {"ok": True, "stop": None}
        assert not core.tick()
    clock.advance(POLICY.lease_ttl_s + 1)  # then the runner goes silent (hung, SIGSTOPped, dead)
    core.tick()
    new = cluster.tokens(job_id)[-1]
    assert new == old + 1 and cluster.stopped == [f"sienn-runner-{job_id}-{old}"]
    rec = core.get_job(job_id)
    assert rec.phase == JobPhase.LAUNCHING and rec.attempts == 2 and rec.lease.token == new
    # the old trainer still reports: refused, told to stop, nothing recorded
    assert core.report_progress(job_id, {"step": 9}, old) == {"cancel_requested": True, "fenced": True}
    assert core.report_progress(job_id, {"step": 9}, None)["fenced"]
    core.add_event(job_id, "checkpoint", {"step": 9}, old)
    assert core.heartbeat(job_id, old)["ok"] is False
    core.finish_run(job_id, old, finished(20, 3))
    rec = core.get_job(job_id)
    assert rec.step == 1 and rec.status == JobStatus.PENDING
    # the new runner's trainer is heard
    assert core.report_progress(job_id, {"step": 2}, new) == {"cancel_requested": False}
    assert core.get_job(job_id).status == JobStatus.RUNNING


def test_a_restarted_registry_gives_every_lease_a_full_ttl(env):
    core, cluster, clock, url = env
    job_id, token = start_training(core, cluster, job())
    clock.advance(POLICY.lease_ttl_s * 5)  # the registry was down this long: no heartbeat could land
    restarted = RegistryCore(Store(url), cluster, POLICY, clock)
    assert not restarted.tick()
    assert restarted.heartbeat(job_id, token)["ok"]


def test_queue_runs_in_priority_then_arrival_order_as_resources_free(env):
    core, cluster, _, _ = env
    cluster.free_now = {"CPU": 2, "GPU": 0}
    a = core.submit_job(job(cpus_per_worker=2))
    b = core.submit_job(job(cpus_per_worker=2))
    c = core.submit_job(job(cpus_per_worker=2, priority=0))
    urgent = core.submit_job(job(cpus_per_worker=2, priority=5))
    assert cluster.tokens(a.job_id) == [1] and a.phase == JobPhase.LAUNCHING and a.queue_position is None
    positions = {r.job_id: core.get_job(r.job_id).queue_position for r in (b, c, urgent)}
    assert positions == {urgent.job_id: 1, b.job_id: 2, c.job_id: 3}
    assert "Waiting for resources: needs 2 CPU" in core.get_job(urgent.job_id).message
    assert [j for j, _, _ in cluster.launched] == [a.job_id]  # a launching job's CPUs are counted as taken
    token = cluster.tokens(a.job_id)[0]
    core.report_progress(a.job_id, {"step": 1}, token)
    cluster.free_now = {"CPU": 0, "GPU": 0}  # its workers hold them now
    core.tick()
    core.finish_run(a.job_id, token, finished(20, 3))
    cluster.free_now = {"CPU": 2, "GPU": 0}
    core.tick()
    assert [j for j, _, _ in cluster.launched] == [a.job_id, urgent.job_id]
    assert core.get_job(b.job_id).queue_position == 1 and core.get_job(c.job_id).queue_position == 2


def test_admission_names_what_was_asked_and_what_exists(env):
    core, _, _, url = env
    with pytest.raises(ResourcesUnavailable) as too_many:
        core.submit_job(job(num_workers=8))
    assert "8 CPU" in too_many.value.detail and "4 CPU" in too_many.value.detail
    assert too_many.value.extra["requested"]["CPU"] == 8 and too_many.value.extra["cluster"]["CPU"] == 4
    with pytest.raises(ResourcesUnavailable, match="largest node has 4 CPU"):
        core.submit_job(job(cpus_per_worker=6))
    with pytest.raises(ResourcesUnavailable, match="no node has one"):
        core.submit_job(job(use_gpu=True))
    assert ReadStore(url).list_jobs()[1] == 0


def test_pause_and_resume_in_every_state(env):
    core, cluster, clock, url = env
    queued_blocker = core.submit_job(job(cpus_per_worker=4))  # takes the whole node
    waiting = core.submit_job(job())
    paused = core.request_stop(waiting.job_id, "pause")
    assert paused.status == JobStatus.PAUSED and paused.queue_position is None
    assert core.request_stop(waiting.job_id, "pause").status == JobStatus.PAUSED  # idempotent
    with pytest.raises(DatasetInUse):
        core.delete_dataset("ds_0000000000000000")
    resumed = core.resume_job(waiting.job_id)
    assert resumed.phase == JobPhase.QUEUED and resumed.queue_position == 1
    with pytest.raises(JobStateConflict):
        core.resume_job(waiting.job_id)
    # a launching job stops at once: its runner is killed, nothing was trained
    stopped = core.request_stop(queued_blocker.job_id, "cancel")
    assert stopped.status == JobStatus.CANCELLED and cluster.stopped == [cluster.launched[0][2]]
    # a training job stops cooperatively, at a checkpoint
    job_id, token = waiting.job_id, cluster.tokens(waiting.job_id)[-1]
    core.report_progress(job_id, {"step": 7, "total_steps": 20}, token)
    stopping = core.request_stop(job_id, "pause")
    assert stopping.phase == JobPhase.STOPPING and stopping.status == JobStatus.RUNNING
    assert core.report_progress(job_id, {"step": 8}, token)["cancel_requested"] is True
    core.report_progress(job_id, {"last_checkpoint": "/ckpt8"}, token)
    rec = core.finish_run(job_id, token, RunOutcome(result="stopped", step=8, epoch=1))
    assert rec.status == JobStatus.PAUSED and rec.step == 8 and "step 8" in rec.message and rec.lease is None
    rec = core.resume_job(job_id)
    assert rec.phase == JobPhase.LAUNCHING and rec.attempts == 1 and rec.lease.token == token + 1
    # a paused job cancels at once
    core.request_stop(job_id, "pause")  # launching: paused at once
    assert core.request_stop(job_id, "cancel").status == JobStatus.CANCELLED
    assert "paused" in types(url, job_id) and types(url, job_id)[-1] == "cancelled"


def test_a_stop_that_takes_too_long_is_finished_by_force(env):
    core, cluster, clock, _ = env
    job_id, token = start_training(core, cluster, job())
    core.request_stop(job_id, "cancel")
    clock.advance(POLICY.stop_grace_s / 2)
    core.heartbeat(job_id, token)
    assert not core.tick()
    clock.advance(POLICY.stop_grace_s)
    core.heartbeat(job_id, token)
    core.tick()
    rec = core.get_job(job_id)
    assert rec.status == JobStatus.CANCELLED and "by force" in rec.message and cluster.stopped


def test_tenants_see_only_their_own_records(env):
    core, _, _, url = env
    core.put_dataset(dataset(1, tenant="acme"))
    with pytest.raises(DatasetNotFound):
        core.submit_job(job("ds_0000000000000001", tenant="other"))
    theirs = core.submit_job(job("ds_0000000000000001", tenant="acme"))
    with pytest.raises(JobNotFound):
        core.request_stop(theirs.job_id, "cancel", tenant="other")
    with pytest.raises(DatasetNotFound):
        core.delete_dataset("ds_0000000000000001", tenant="other")
    reader = ReadStore(url)
    assert reader.get_job(theirs.job_id, "other") is None and reader.get_job(theirs.job_id, "acme")
    assert reader.list_jobs("other")[1] == 0 and reader.list_jobs("acme")[1] == 1 and reader.list_jobs()[1] == 1


def test_events_page_by_seq(env):
    core, _, _, url = env
    rec = core.adopt_job(job(), holder="test")
    for i in range(5):
        core.add_event(rec.job_id, "tick", {"i": i}, rec.lease.token)
    reader = ReadStore(url)
    first = reader.list_events(rec.job_id, 0, 3)
    rest = reader.list_events(rec.job_id, first[-1].seq, 100)
    assert [e.type for e in first + rest] == ["created"] + ["tick"] * 5
    assert [e.data["i"] for e in rest] == [2, 3, 4]


def test_finish_is_idempotent_and_stops_the_holder(env):
    core, cluster, _, _ = env
    rec = core.adopt_job(job(), holder="driver-1")
    core.finish(rec.job_id, "failed", "boom", error_code="TRAINING_FAILED")
    again = core.finish(rec.job_id, "completed", "late")
    assert again.status == JobStatus.FAILED and again.message == "boom" and cluster.stopped == ["driver-1"]
    with pytest.raises(JobStateConflict):
        core.request_stop(rec.job_id, "cancel")


def test_a_trainers_progress_report_is_stored_with_the_records_types(env):
    import warnings
    from datetime import datetime

    from sienn_ray.train.progress import RunProgress
    from sienn_ray.train.state import TrainState

    core, cluster, _, url = env
    job_id, token = start_training(core, cluster, job(num_epochs=2))
    state = TrainState(total_steps=10)
    progress = RunProgress(state, None, num_epochs=2, world_size=1, window_steps=1, truncated=0)
    state.global_step = 4
    update = progress.update(epoch=0)
    assert isinstance(update["estimated_completion"], str)  # what crosses from the trainer
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # pydantic warns when it saves a field holding a value of another type
        core.report_progress(job_id, update, token)
    rec = core.get_job(job_id)
    assert isinstance(rec.estimated_completion, datetime) and rec.step == 4
    assert ReadStore(url).get_job(job_id).estimated_completion == rec.estimated_completion
