"""A training worker process killed (SIGKILL the RayTrainWorker): the job resumes from its checkpoint and completes.

Ray Train restarts the worker group from the last reported checkpoint
(``FailureConfig(max_failures)``), inside the same runner and lease: no relaunch.
"""

from __future__ import annotations

import os
import re
import signal
import time

import pytest
from chaos_kit import check_complete_record, demo_dataset, submit, wait_for
from helpers import demo_config

EVERY = 10
# Far above the session's RAY_TRAIN_HEALTH_CHECK_INTERVAL_S (0.2 s): the controller has polled by then.
CONTROLLER_POLL_S = 3.0
CONFIG = demo_config() | {"num_epochs": 30, "checkpoint_every_steps": EVERY, "max_failures": 2}


def _train_workers(ray) -> dict[str, int]:
    """Alive RayTrainWorker actors of the session cluster: actor id -> pid."""
    from ray.util.state import list_actors

    alive = list_actors(address=ray.get_runtime_context().gcs_address, filters=[("state", "=", "ALIVE")], limit=10000)
    return {a.actor_id: a.pid for a in alive if a.class_name == "RayTrainWorker"}


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_a_killed_train_worker_resumes_from_its_checkpoint_and_completes(ray_session, registry, reader):
    others = _train_workers(ray_session)
    job_id = submit(registry, demo_dataset(registry), CONFIG)
    before = wait_for(lambda: (lambda j: j if j.last_checkpoint and j.step >= 2 * EVERY + 5 else None)(
        reader.get_job(job_id)), 600, "two checkpoints")
    ours = wait_for(lambda: {a: p for a, p in _train_workers(ray_session).items() if a not in others}, 60,
                    "the job's train worker")
    assert len(ours) == 1, ours
    checkpoint_step = int(re.search(r"checkpoint_(\d+)", before.last_checkpoint).group(1))
    # Rank 0 reports a checkpoint as soon as it is written; Ray Train's controller registers it at its next
    # poll of the workers. Killed before that, the run resumes from the one before (a fast machine got there).
    time.sleep(CONTROLLER_POLL_S)
    os.kill(next(iter(ours.values())), signal.SIGKILL)
    job = wait_for(lambda: (lambda j: j if j.status.is_terminal else None)(reader.get_job(job_id)), 900,
                   "the job finished after the kill", every_s=1.0)
    events = reader.list_events(job_id)
    resumed = [e.data["step"] for e in events if e.type == "resumed"]
    print(f"\ntrain worker SIGKILLed at step {before.step} (last checkpoint {checkpoint_step}); resumed from "
          f"{resumed}; {job.status.value} at {job.step}/{job.total_steps}")
    check_complete_record(job)
    # Resumed once, from a checkpoint at or after the one seen before the kill, never from step 0.
    assert len(resumed) == 1 and resumed[0] >= checkpoint_step > 0 and resumed[0] % EVERY == 0, resumed
    assert (job.attempts, job.last_token) == (1, 1)  # the worker group restarted; the job was not relaunched
    steps = [p.step for p in reader.loss_history(job_id)]
    assert steps == sorted(set(steps)) and steps[-1] == job.total_steps
