"""Session-wide fixtures: one storage root, one Ray instance, one Serve app per test session.

Pure tests request none of these and never start Ray. Everything started here is
stopped at the end of the session (Serve, the Ray cluster and its processes).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))

from helpers import demo_config, free_port, make_random_adapter, wait_for_job  # noqa: E402

_SESSION_HOME = None
_RAY_CONTEXT: dict = {}


def pytest_configure(config):
    """Point SIENN_HOME at a fresh folder before any sienn_ray module reads settings."""
    global _SESSION_HOME
    import tempfile

    _SESSION_HOME = Path(tempfile.mkdtemp(prefix="sienn-test-"))
    os.environ["SIENN_HOME"] = str(_SESSION_HOME)
    os.environ["RAY_AUTH_MODE"] = "token"
    os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.2"
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    os.environ["HF_HUB_OFFLINE"] = "1"
    os.environ["RAY_DEDUP_LOGS"] = "0"
    # Small upload limit so the 413 path is testable without sending gigabytes.
    os.environ["SIENN_MAX_UPLOAD_BYTES"] = str(8 * 1024 * 1024)
    # The session app serves the whole suite from one address (auth off: limits per client address):
    # counted, with headers, but never reached. tests/security runs its own apps with real limits.
    os.environ["SIENN_RATE_LIMITS"] = "standard=1000000/minute,training=1000000/minute,inference=1000000/minute"
    # Runner leases: short enough that the lease tests see one expire, long enough for a loaded machine.
    os.environ.setdefault("SIENN_LEASE_TTL_S", "20")
    os.environ.setdefault("SIENN_LAUNCH_GRACE_S", "240")
    # Fast default for tests that omit model_name; tests/models and tests/e2e check the real default.
    os.environ["SIENN_DEFAULT_MODEL"] = "sienn-tiny-gpt2"
    os.environ.pop("RAY_ADDRESS", None)
    from sienn_ray.settings import apply_ray_env, reset_settings

    reset_settings()
    apply_ray_env()


def pytest_unconfigure(config):
    import shutil

    if _SESSION_HOME is not None:
        shutil.rmtree(_SESSION_HOME, ignore_errors=True)


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_gpu = torch.cuda.is_available()
    except Exception:  # noqa: BLE001
        has_gpu = False
    if not has_gpu:
        skip = pytest.mark.skip(reason="needs a CUDA GPU")
        for item in items:
            if "gpu" in item.keywords:
                item.add_marker(skip)



def pytest_runtest_logreport(report):
    """Name each failure, and each test over a minute, the moment it happens: a CI run stopped for time
    never reaches pytest's closing summary, and its log must still say what went wrong."""
    terminal = _TERMINAL.get("reporter")
    if terminal is None:
        return
    if report.failed:
        lines = str(report.longrepr).strip().splitlines() or [""]
        reason = next((line for line in lines if line.startswith("E ")), lines[-1])
        terminal.write_line(f"\n[{report.when} FAILED] {report.nodeid}: {reason[:400]}")
    elif report.duration > 60:
        terminal.write_line(f"\n[{report.when} took {report.duration:.0f} s] {report.nodeid}")


_TERMINAL: dict = {}


@pytest.hookimpl(trylast=True)
def pytest_sessionstart(session):
    _TERMINAL["reporter"] = session.config.pluginmanager.get_plugin("terminalreporter")

@pytest.fixture(scope="session")
def sienn_home() -> Path:
    return _SESSION_HOME


@pytest.fixture(scope="session")
def embedded_models(sienn_home):
    """name -> local dir of the embedded base models (built once per session)."""
    from sienn_ray.models.embedded import ensure_embedded_models

    return ensure_embedded_models()


@pytest.fixture(scope="session")
def ray_session(sienn_home, embedded_models):
    """One local Ray instance (with dashboard, as Train V2 wants) for the whole session."""
    import ray

    from sienn_ray.settings import get_settings

    context = ray.init(
        address="local",
        num_cpus=4,
        namespace=get_settings().ray_namespace,
        include_dashboard=True,
        dashboard_port=free_port(),
        log_to_driver=False,
        configure_logging=False,
    )
    _RAY_CONTEXT["dashboard_url"] = "http://" + context.dashboard_url
    _RAY_CONTEXT["logs_dir"] = Path(context.address_info["session_dir"]) / "logs"
    yield ray
    try:
        from ray import serve

        serve.shutdown()
    except Exception:  # noqa: BLE001
        pass
    ray.shutdown()


@pytest.fixture(scope="session")
def ray_dashboard_url(ray_session) -> str:
    """The session cluster's dashboard (Ray Jobs API) address."""
    return _RAY_CONTEXT["dashboard_url"]


@pytest.fixture(scope="session")
def ray_logs_dir(ray_session) -> Path:
    """The session cluster's log folder (each worker's stdout/stderr, and Serve's own files in serve/)."""
    return _RAY_CONTEXT["logs_dir"]


@pytest.fixture(scope="session")
def registry(ray_session):
    """RegistryClient of the session's named, detached job registry (created on first use)."""
    from sienn_ray.jobs.registry import connect_registry

    client = connect_registry()
    client.ping().result(timeout=120)
    return client


@pytest.fixture(scope="session")
def reader(registry):
    """A read-only store of the session's database, as the API replicas have."""
    from sienn_ray.settings import get_settings
    from sienn_ray.store import ReadStore

    store = ReadStore(get_settings().db_url)
    yield store
    store.close()


@pytest.fixture(scope="session")
def api_url(ray_session, registry):
    """Base URL of the real Serve app (API ingress + inference) on localhost."""
    import httpx
    from ray import serve

    from sienn_ray.api.ingress import build_app

    port = free_port()
    serve.start(http_options={"host": "127.0.0.1", "port": port})
    serve.run(build_app({}), name="sienn", route_prefix="/")
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if httpx.get(url + "/health", timeout=5).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.5)
    yield url
    serve.shutdown()


@pytest.fixture(scope="session")
def make_completed_job(registry, embedded_models):
    """Factory: a completed job (record + random LoRA adapter on disk) without training. Returns its id."""
    from sienn_ray import paths
    from sienn_ray.models.resolve import resolve_model
    from sienn_ray.schemas.common import new_id, utcnow
    from sienn_ray.schemas.datasets import DatasetRecord, DatasetValidation
    from sienn_ray.schemas.jobs import JobRecord, JobStatus, TrainingConfig

    dataset = DatasetRecord(
        dataset_id="ds_" + "f" * 16, filename="fixture.jsonl", format="jsonl", total_samples=1, size_bytes=1,
        preview=[], validation=DatasetValidation(valid=True, columns=["instruction", "output"], null_counts={}),
        uploaded_at=utcnow(), sha256="f" * 64,
    )

    def _make(model_name: str = "sienn-tiny-gpt2", seed: int = 0) -> str:
        # Put each time (it is idempotent): a test before may have deleted the dataset, as the fuzz test
        # does through DELETE /api/datasets and /v1/files.
        registry.put_dataset(dataset).result()
        model = resolve_model(model_name)
        job_id = new_id("job")
        adapter = make_random_adapter(model.path, paths.job_adapter(job_id), seed)
        now = utcnow()
        rec = JobRecord(job_id=job_id, model_name=model.name, model_path=model.path, dataset_id=dataset.dataset_id,
                        config=TrainingConfig(), total_epochs=1, created_at=now, updated_at=now)
        registry.adopt_job(rec, "fixture").result()
        registry.finish(job_id, JobStatus.COMPLETED.value, "fixture", adapter_path=str(adapter)).result()
        return job_id

    return _make


@pytest.fixture(scope="session")
def demo_dataset_id(api_url) -> str:
    import httpx

    from sienn_ray.data.demo import demo_records

    data = "".join(__import__("json").dumps(r) + "\n" for r in demo_records()).encode()
    resp = httpx.post(f"{api_url}/api/upload-dataset", files={"file": ("demo.jsonl", data)}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()["dataset_id"]


@pytest.fixture(scope="session")
def demo_job(api_url, demo_dataset_id) -> dict:
    """The 30-row demo trained through the API with the README's demo settings (once per session)."""
    import httpx

    started = time.time()
    resp = httpx.post(f"{api_url}/api/start-finetuning", timeout=60,
                      json={"dataset_id": demo_dataset_id, "config": demo_config()})
    assert resp.status_code == 200, resp.text
    job = resp.json()
    status = wait_for_job(api_url, job["job_id"])
    assert status["status"] == "completed", status
    return {"job_id": job["job_id"], "start_response": job, "status": status,
            "wall_seconds": time.time() - started}
