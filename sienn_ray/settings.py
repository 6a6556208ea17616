"""One settings object read from the environment; every other module asks it."""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
import sys
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

PROJECT_DIR = Path(__file__).resolve().parent.parent
# The built-in real pretrained base (models/pretrained.py); the toy models stay for fast tests.
DEFAULT_MODEL = "smollm2-135m-instruct"
# Requests per key (per client address with auth off) for each route class (auth/routes.py).
DEFAULT_RATE_LIMITS = "standard=100/minute,training=10/minute,inference=50/minute"


def is_loopback_name(host: str) -> bool:
    """``localhost`` (and ``*.localhost``, RFC 6761) or a loopback address such as 127.0.0.1 or ::1."""
    name = host.strip().lower().rstrip(".").removeprefix("[").removesuffix("]")
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(name).is_loopback
    except ValueError:
        return False


def _int_env(name: str, default: int) -> int:
    raw = os.environ.get(name)
    return int(raw) if raw else default


def _float_env(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """Runtime settings. ``SIENN_HOME`` is the storage root that every node must see."""

    home: Path = field(default_factory=lambda: Path(os.environ.get("SIENN_HOME", PROJECT_DIR / ".sienn")).resolve())
    database_url: str | None = field(default_factory=lambda: os.environ.get("SIENN_DATABASE_URL") or None)
    max_upload_bytes: int = field(default_factory=lambda: _int_env("SIENN_MAX_UPLOAD_BYTES", 2 * 1024**3))
    default_model: str = field(default_factory=lambda: os.environ.get("SIENN_DEFAULT_MODEL", DEFAULT_MODEL))
    ray_namespace: str = field(default_factory=lambda: os.environ.get("SIENN_RAY_NAMESPACE", "sienn"))
    # Where `make up` puts the API (Serve's HTTP proxy), the Ray head (GCS) and the dashboard / Jobs API.
    http_host: str = field(default_factory=lambda: os.environ.get("SIENN_HTTP_HOST", "127.0.0.1"))
    http_port: int = field(default_factory=lambda: _int_env("SIENN_HTTP_PORT", 8000))
    ray_port: int = field(default_factory=lambda: _int_env("SIENN_RAY_PORT", 6390))
    dashboard_port: int = field(default_factory=lambda: _int_env("SIENN_DASHBOARD_PORT", 8265))
    # Who answers the HTTP port: "haproxy" (Ray Serve's HAProxy ingress: HAProxy forwards each request
    # straight to the API replica's own HTTP server) or "proxy" (Serve's Python proxy actor, one more
    # hop and ~3-5 ms of CPU per request; bench/api_load.py compares them).
    serve_ingress: str = field(default_factory=lambda: os.environ.get("SIENN_SERVE_INGRESS") or "haproxy")
    # Control plane (jobs/policy.py): runner leases, cooperative stops, relaunch limit, admission.
    lease_ttl_s: float = field(default_factory=lambda: _float_env("SIENN_LEASE_TTL_S", 30.0))
    launch_grace_s: float = field(default_factory=lambda: _float_env("SIENN_LAUNCH_GRACE_S", 120.0))
    stop_grace_s: float = field(default_factory=lambda: _float_env("SIENN_STOP_GRACE_S", 30.0))
    max_launches: int = field(default_factory=lambda: _int_env("SIENN_MAX_LAUNCHES", 4))
    autoscaler_config: Path = field(default_factory=lambda: Path(
        os.environ.get("SIENN_AUTOSCALER_CONFIG", "~/ray_bootstrap_config.yaml")).expanduser())
    # os.pathsep-separated; unset: the storage root's models/ plus the Hugging Face hub cache.
    model_dirs_env: str | None = field(default_factory=lambda: os.environ.get("SIENN_MODEL_DIRS") or None)
    # Safe to share (auth/, api/security.py): API keys, rate limits, quotas, browser safety, body limits.
    # SIENN_AUTH: required | off; unset: required unless the API listens on loopback only.
    auth_env: str | None = field(default_factory=lambda: os.environ.get("SIENN_AUTH") or None)
    rate_limits: str = field(default_factory=lambda: os.environ.get("SIENN_RATE_LIMITS") or DEFAULT_RATE_LIMITS)
    # A `limits` storage URI (e.g. redis://host:6379) shared by every replica; unset: a named Ray actor.
    rate_limit_storage: str | None = field(default_factory=lambda: os.environ.get("SIENN_RATE_LIMIT_STORAGE") or None)
    quotas: str = field(default_factory=lambda: os.environ.get("SIENN_QUOTAS", ""))  # defaults for every key
    allowed_origins: str = field(default_factory=lambda: os.environ.get("SIENN_ALLOWED_ORIGINS", ""))
    allowed_hosts: str = field(default_factory=lambda: os.environ.get("SIENN_ALLOWED_HOSTS", ""))
    max_json_bytes: int = field(default_factory=lambda: _int_env("SIENN_MAX_JSON_BYTES", 1024 * 1024))
    key_cache_s: float = field(default_factory=lambda: _float_env("SIENN_KEY_CACHE_S", 5.0))  # revocation delay
    # Above this dataset file size a training worker's shard is tokenized into a memory-mapped Arrow cache
    # (train/inputs.py): as Python lists a token costs some 70 bytes, so 64 MB of data is ~1 GB of memory.
    arrow_min_bytes: int = field(default_factory=lambda: _int_env("SIENN_ARROW_MIN_BYTES", 64 << 20))

    @property
    def auth_required(self) -> bool:
        """Whether requests need an API key: SIENN_AUTH, else whenever the API listens beyond loopback."""
        if self.auth_env is not None:
            if self.auth_env not in ("required", "off"):
                raise ValueError(f"SIENN_AUTH must be 'required' or 'off', not {self.auth_env!r}")
            return self.auth_env == "required"
        return not is_loopback_name(self.http_host)

    @property
    def model_dirs(self) -> tuple[Path, ...]:
        """The only folders local models and GGUF files load from, symlinks and ``..`` resolved."""
        if self.model_dirs_env:
            parts = [part for part in self.model_dirs_env.split(os.pathsep) if part.strip()]
            return tuple(Path(part).expanduser().resolve() for part in parts)
        from huggingface_hub import constants

        # Read at call time, so an HF_HUB_CACHE the operator (or a test) sets applies.
        return ((self.home / "models").resolve(), Path(constants.HF_HUB_CACHE).expanduser().resolve())

    @property
    def db_url(self) -> str:
        """The metadata store: the configured URL, else SQLite inside the storage root."""
        return self.database_url or f"sqlite:///{self.home / 'sienn.db'}"

    @property
    def run_dir(self) -> Path:
        """State of the local stack (`make up`): head pid and ports, logs, the Ray auth token."""
        return self.home / "run"

    @property
    def ray_auth_token_path(self) -> Path:
        """The stack's Ray auth token (created by apply_ray_env, read by the head and every client)."""
        return self.run_dir / "ray_auth_token"


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def reset_settings() -> None:
    """Forget cached settings (tests change SIENN_HOME between sessions)."""
    get_settings.cache_clear()


# Ray 2.60 turns token auth on by default and then every client (ray status, ray job
# submit, serve deploy) must agree on the mode and the token. This is the one place that
# decides both: `python -m sienn_ray env` prints the same for a shell.
RAY_AUTH_MODE = "token"


def ensure_ray_auth_token(path: Path) -> Path:
    """Create the stack's Ray auth token once (mode 0600, Ray's own format); never overwrite one."""
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Same format as `ray get-auth-token --generate` (256 random bits, hex).
    token = secrets.token_hex(32)
    tmp = path.with_name(f".{path.name}.{os.getpid()}")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(token)
    try:
        os.link(tmp, path)  # atomic and refuses to replace: a concurrent first start keeps one token
    except FileExistsError:
        pass
    finally:
        tmp.unlink()
    return path


# How every Ray worker of ours runs its event loops and writes Serve's logs (cluster.yaml's `ray start`
# lines set the same):
# - the stock asyncio loop, not uvloop (Ray's default when installed): with uvloop a saturated uvicorn
#   leaves some connections of a burst unanswered for seconds while others are served (bench/api_load.py:
#   200 fresh connections, 24-99 requests over 2 s under uvloop, none under asyncio, whose ready
#   callbacks run first come, first served). Serve's queue bound for inference calls is loose on it,
#   so the API bounds those calls itself (inference/inflight.py);
# - Serve replicas run our code on their own loop, not on a second loop in another thread: otherwise
#   every request and each of its ASGI messages crosses between the two threads through the GIL (a
#   third of a /health request's CPU in the replica). Our deployments never block their loop (blocking
#   work runs in threads), which is what the second loop guards against;
# - Serve's logs (a replica's access line per request, our loggers) go to its files under logs/serve/
#   only, not a second time to the worker's stderr, which Ray's log monitor reads and ships line by line
#   (bench/api_load.py: 17 MB of identical access lines written twice in four minutes at ~1,000 req/s).
WORKER_ENV = {"RAY_USE_UVLOOP": "0", "RAY_SERVE_RUN_USER_CODE_IN_SEPARATE_THREAD": "0", "RAY_SERVE_LOG_TO_STDERR": "0"}


def apply_ray_env() -> None:
    """Environment every Ray process and client of ours shares."""
    os.environ.setdefault("RAY_AUTH_MODE", RAY_AUTH_MODE)
    if os.environ["RAY_AUTH_MODE"] == "token":
        # The head and every client read the token from the storage root, whatever is or is
        # not in ~/.ray. RAY_AUTH_TOKEN would win over the file in Ray's lookup order, so a
        # stray one in the shell is dropped rather than silently splitting head and clients.
        os.environ["RAY_AUTH_TOKEN_PATH"] = str(ensure_ray_auth_token(get_settings().ray_auth_token_path))
        os.environ.pop("RAY_AUTH_TOKEN", None)
    # `ray job submit ... -- python -m sienn_ray ...` runs `python` from the cluster's PATH:
    # make it this interpreter (the project's venv), where the project is installed.
    bin_dir = str(Path(sys.executable).parent)
    if os.environ.get("PATH", "").split(os.pathsep)[0] != bin_dir:
        os.environ["PATH"] = bin_dir + os.pathsep + os.environ.get("PATH", "")
    os.environ.setdefault("SIENN_HOME", str(get_settings().home))
    # Ray Train V2 polls worker health every few seconds by default; this keeps fit() start-up short.
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.5")
    # A worker whose node vanished answers no health check; Ray Train's default waits 10 minutes
    # before restarting the group from the last checkpoint. One minute is plenty.
    os.environ.setdefault("RAY_TRAIN_WORKER_HEALTH_CHECK_TIMEOUT_S", "60")
    # On a loaded 2-core machine the Serve proxy can take longer than the 5 s default
    # readiness check to start, and Serve then kills it in a loop.
    os.environ.setdefault("RAY_SERVE_PROXY_READY_CHECK_TIMEOUT_S", "60")
    os.environ.setdefault("RAY_SERVE_PROXY_HEALTH_CHECK_TIMEOUT_S", "30")
    for name, value in WORKER_ENV.items():
        os.environ.setdefault(name, value)
    apply_serve_ingress_env(get_settings().serve_ingress)


def apply_serve_ingress_env(ingress: str) -> None:
    """Serve's ingress mode, read once by every Serve process of a cluster started after this."""
    if ingress not in ("haproxy", "proxy"):
        raise ValueError(f"SIENN_SERVE_INGRESS must be 'haproxy' or 'proxy', not {ingress!r}")
    if ingress == "proxy":
        os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "0")
        return
    os.environ.setdefault("RAY_SERVE_ENABLE_HA_PROXY", "1")
    # HAProxy's stats and Prometheus listeners default to fixed ports (8404, 9101): two stacks on one
    # machine would fight over them, so each cluster gets free ones (its HTTP port stays the setting).
    names = ("RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT")
    for name, port in zip(names, free_ports(len(names))):
        if not os.environ.get(name):
            os.environ[name] = str(port)
    # A replica being replaced finishes its requests while HAProxy already sends new ones elsewhere;
    # Serve's 30 s default drain would make every redeploy and `make down` wait that long for nothing.
    os.environ.setdefault("RAY_SERVE_DIRECT_INGRESS_MIN_DRAINING_PERIOD_S", "5")
    # HAProxy answers a request line + headers over its buffer (16 KiB by default) with its own HTML
    # 400; with 64 KiB (the URL length most clients refuse to send anyway) the app answers in the spec's
    # error format. HAProxy takes buffers from a pool as connections need them, not per maxconn upfront.
    os.environ.setdefault("RAY_SERVE_HAPROXY_TUNE_BUFSIZE", str(64 * 1024))


def free_ports(count: int) -> list[int]:
    """``count`` distinct ports free now (held open together so the kernel picks different ones)."""
    socks = []
    try:
        for _ in range(count):
            sock = socket.socket()
            sock.bind(("", 0))
            socks.append(sock)
        return [sock.getsockname()[1] for sock in socks]
    finally:
        for sock in socks:
            sock.close()
