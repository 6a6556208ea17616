"""cluster.yaml is a valid Ray cluster-launcher config that starts this project's app."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import ray
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _config() -> dict:
    return yaml.safe_load((ROOT / "cluster.yaml").read_text())


def _ray_starts(cfg: dict) -> list[str]:
    """The `ray start` lines of the head and of the workers."""
    return [c for c in cfg["head_start_ray_commands"] + cfg["worker_start_ray_commands"] if "ray start" in c]


def test_cluster_yaml_matches_rays_own_schema():
    schema = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())
    jsonschema.validate(_config(), schema)


def test_cluster_yaml_starts_this_app_with_shared_storage():
    cfg = _config()
    head = " && ".join(cfg["head_start_ray_commands"])
    assert "serve deploy serve_config.yaml" in head
    assert "SIENN_HOME=/mnt/sienn" in head
    setup = " ".join(cfg["setup_commands"])
    assert "pip install" in setup and "-e ." in setup and "mount" in setup
    workers = " ".join(cfg["worker_start_ray_commands"])
    assert "SIENN_HOME=/mnt/sienn" in workers
    gpu = cfg["available_node_types"]["gpu_worker"]
    assert gpu["resources"]["GPU"] >= 1 and gpu["min_workers"] == 0 and gpu["max_workers"] > 0
    assert cfg["head_node_type"] == "head_cpu"
    assert "GPU" not in cfg["available_node_types"]["head_cpu"]["resources"]


def test_every_node_reads_the_one_token_in_shared_storage():
    cfg = _config()
    token = "RAY_AUTH_TOKEN_PATH=/mnt/sienn/run/ray_auth_token"
    starts = _ray_starts(cfg)
    assert len(starts) == 2 and all(token in c and "RAY_AUTH_MODE=token" in c for c in starts)
    head = cfg["head_start_ray_commands"]
    creates = next(i for i, c in enumerate(head) if "python3 -m sienn_ray env" in c)
    assert token in head[creates] and creates < next(i for i, c in enumerate(head) if "ray start --head" in c)


def test_serve_config_points_at_the_app_builder():
    serve_cfg = yaml.safe_load((ROOT / "serve_config.yaml").read_text())
    app = serve_cfg["applications"][0]
    module, attr = app["import_path"].split(":")
    assert module == "sienn_ray.api.ingress" and attr == "build_app"
    names = {d["name"] for d in app["deployments"]}
    assert {"ApiIngress", "InferenceDeployment"} <= names
    assert serve_cfg["http_options"]["port"] == 8000


def test_serve_config_matches_serves_own_schema():
    from ray.serve.schema import ServeDeploySchema

    ServeDeploySchema.model_validate(yaml.safe_load((ROOT / "serve_config.yaml").read_text()))


def test_every_node_runs_its_workers_as_apply_ray_env_sets():
    from sienn_ray.settings import WORKER_ENV

    cfg = _config()
    starts = _ray_starts(cfg)
    assert all(f"{name}={value}" in c for c in starts for name, value in WORKER_ENV.items())
