"""The job registry killed 10 times while 2 jobs train: both complete, every record and loss point whole.

``ray.kill(registry, no_restart=False)``: Ray restarts the actor, which reopens the
database and gives every lease a full TTL. Training never waits on it (reports are
fire and forget, retried by Ray into the restarted actor). What the trainers logged
as sent (their journal) is compared with what the store holds: every loss point and
trainer event exactly once, the registry's own events exactly once (no relaunch,
no lost lease), statuses right after each restart.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from chaos_kit import (
    check_complete_record,
    demo_dataset,
    journal,
    sent_events,
    sent_loss_steps,
    stored,
    submit,
    wait_for,
)
from helpers import demo_config

KILLS = 10
# Long enough (3,200 optimizer steps each) that both jobs train together through the 10 kills on an idle
# machine, where one job does about 24 steps/s and the second may launch half a minute after the first
# (800 steps: the first job had finished before the second started).
CONFIG = demo_config() | {"num_epochs": 400, "checkpoint_every_steps": 200}


@pytest.mark.slow
@pytest.mark.timeout(1800)
def test_registry_killed_ten_times_while_two_jobs_train(ray_session, registry, reader):
    from sienn_ray.jobs.client import REGISTRY_NAME
    from sienn_ray.settings import get_settings

    ray = ray_session
    dataset = demo_dataset(registry)
    job_ids = [submit(registry, dataset, CONFIG | {"seed": seed}) for seed in (11, 12)]
    wait_for(lambda: all(reader.get_job(j).status.value == "running" and reader.get_job(j).step > 0
                         for j in job_ids), 600, "both jobs training")
    handle = ray.get_actor(REGISTRY_NAME, namespace=get_settings().ray_namespace)
    restarts, seen_after = [], []
    for kill in range(KILLS):
        before = registry.ping().result(timeout=120)["started_at"]
        now = [reader.get_job(j) for j in job_ids]
        assert all(not j.status.is_terminal for j in now), (
            f"a job ended before kill {kill + 1}: {[(j.status.value, j.step, j.total_steps, j.message) for j in now]}")
        killed = time.monotonic()
        ray.kill(handle, no_restart=False)
        wait_for(lambda: registry.ping().result(timeout=120)["started_at"] != before, 180, "registry restarted")
        restarts.append(time.monotonic() - killed)
        seen_after.append({j: (reader.get_job(j).status.value, reader.get_job(j).phase.value) for j in job_ids})
        steps_at_kill = [reader.get_job(j).step for j in job_ids]
        time.sleep(2.0)  # reports and heartbeats reach the new incarnation before the next kill
    jobs = wait_for(lambda: (lambda js: js if all(j.status.is_terminal for j in js) else None)(
        [reader.get_job(j) for j in job_ids]), 1200, "both jobs finished", every_s=1.0)

    logs = [Path(ray._private.worker._global_node.get_session_dir_path()) / "logs"]
    print(f"\nregistry kills: {KILLS}; restart (kill -> answering) s: "
          f"{', '.join(f'{s:.1f}' for s in restarts)}; max {max(restarts):.1f}; steps at the last kill "
          f"{steps_at_kill} of {jobs[0].total_steps}")
    for job in jobs:
        check_complete_record(job)
        said = journal(logs, job.job_id)
        events, registry_events, steps = stored(reader, job.job_id)
        print(f"{job.job_id}: {job.step}/{job.total_steps} steps; loss points {len(steps)} stored, "
              f"{len(sent_loss_steps(said['sent']))} sent; trainer events {sum(events.values())} stored, "
              f"{sum(sent_events(said['sent']).values())} sent; dropped {sum(said['dropped'].values())}; "
              f"registry events {dict(registry_events)}")
        assert said["sent"] and not said["dropped"], said["dropped"]
        assert set(steps) == sent_loss_steps(said["sent"]), set(steps) ^ sent_loss_steps(said["sent"])
        assert steps == sorted(set(steps)) and steps[-1] == job.total_steps
        assert events == sent_events(said["sent"]), (events - sent_events(said["sent"]),
                                                     sent_events(said["sent"]) - events)
        # One launch, one start, one end: no lease was lost and nothing was relaunched or counted twice.
        assert registry_events == {"created": 1, "launched": 1, "started": 1, "completed": 1}, registry_events
        assert (job.attempts, job.last_token) == (1, 1)
    assert all(state == ("running", "training") for after in seen_after for state in after.values()), seen_after
