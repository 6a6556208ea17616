"""Measuring a base model's training throughput as a 1-CPU Ray task, never in the API replica.

The task loads the model and trains a few steps (``train.estimate.calibrate``)
wherever the cluster has a CPU free, and caches the figure under the storage
root; later submissions read the cache (``services.estimates``).
"""

from __future__ import annotations

import logging
import threading

import ray

log = logging.getLogger(__name__)

_started: set[str] = set()
_lock = threading.Lock()


@ray.remote(num_cpus=1, max_retries=0)
def _calibrate(model_path: str) -> float:
    from ..train.estimate import calibrate

    return calibrate(model_path)


def launch_calibration(model_path: str) -> None:
    """Start measuring ``model_path`` once per process; returns at once."""
    with _lock:
        if model_path in _started:
            return
        _started.add(model_path)
    _calibrate.options(name=f"calibrate-{model_path.rsplit('/', 1)[-1]}").remote(model_path)
    log.info("calibrating %s in the background", model_path)
