"""The shipped serve_config.yaml against the code: one source for the inference deployment's limits."""

from __future__ import annotations

import inspect

import yaml

from helpers import ROOT


def test_serve_config_leaves_back_pressure_to_the_code_and_passes_known_arguments():
    from sienn_ray.inference.deployment import MAX_ONGOING_REQUESTS, MAX_QUEUED_REQUESTS, InferenceDeployment

    app = yaml.safe_load((ROOT / "serve_config.yaml").read_text())["applications"][0]
    block = next(d for d in app["deployments"] if d["name"] == "InferenceDeployment")
    assert not {"max_ongoing_requests", "max_queued_requests", "backpressure_config"} & set(block)
    assert InferenceDeployment.max_ongoing_requests == MAX_ONGOING_REQUESTS
    assert InferenceDeployment.max_queued_requests == MAX_QUEUED_REQUESTS
    args = app["args"]["inference"]
    assert set(args) <= set(inspect.signature(InferenceDeployment.func_or_class.__init__).parameters)
    # A replica must take at least a full batch at once, or batches never fill.
    assert args.get("max_batch_size", 16) <= MAX_ONGOING_REQUESTS
