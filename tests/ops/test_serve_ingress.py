"""Who answers the API port: HAProxy (Serve's HAProxy ingress) by default, with ports of its own per stack."""

from __future__ import annotations

import os
from urllib.parse import urlparse

import httpx
import psutil
import pytest

from sienn_ray.ops import head
from sienn_ray.settings import Settings, apply_serve_ingress_env


def test_haproxy_holds_the_api_port_of_the_running_app(api_url):
    port = urlparse(api_url).port
    listeners = {c.pid for c in psutil.net_connections(kind="tcp")
                 if c.status == psutil.CONN_LISTEN and c.laddr.port == port and c.pid}
    assert listeners, f"nothing listens on {port}"
    assert {psutil.Process(pid).name() for pid in listeners} == {"haproxy"}


def test_haproxy_mode_takes_free_listener_ports_and_proxy_mode_leaves_it_off(monkeypatch):
    for name in ("RAY_SERVE_ENABLE_HA_PROXY", "RAY_SERVE_HAPROXY_STATS_PORT", "RAY_SERVE_HAPROXY_METRICS_PORT"):
        monkeypatch.delenv(name, raising=False)
    apply_serve_ingress_env("haproxy")
    ports = {os.environ["RAY_SERVE_HAPROXY_STATS_PORT"], os.environ["RAY_SERVE_HAPROXY_METRICS_PORT"]}
    assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "1"
    assert len(ports) == 2 and not ports & {"8404", "9101"}  # HAProxy's fixed defaults

    monkeypatch.delenv("RAY_SERVE_ENABLE_HA_PROXY")
    apply_serve_ingress_env("proxy")
    assert os.environ["RAY_SERVE_ENABLE_HA_PROXY"] == "0"
    with pytest.raises(ValueError, match="SIENN_SERVE_INGRESS"):
        apply_serve_ingress_env("nginx")


def test_a_stack_started_from_another_stacks_shell_gets_haproxy_ports_of_its_own(monkeypatch, tmp_path):
    monkeypatch.setenv("RAY_SERVE_HAPROXY_STATS_PORT", "8404")  # inherited from the parent stack
    monkeypatch.setenv("RAY_SERVE_HAPROXY_METRICS_PORT", "9101")
    ray_port, dashboard_port, http_port = head.free_ports(3)
    for name, value in (("SIENN_HOME", tmp_path), ("SIENN_RAY_PORT", ray_port),
                        ("SIENN_DASHBOARD_PORT", dashboard_port), ("SIENN_HTTP_PORT", http_port)):
        monkeypatch.setenv(name, str(value))
    first = head.plan_head(Settings())
    env = head.head_env(first)
    assert env["RAY_SERVE_HAPROXY_STATS_PORT"] == str(first.haproxy_stats_port) != "8404"
    assert env["RAY_SERVE_HAPROXY_METRICS_PORT"] == str(first.haproxy_metrics_port) != "9101"
    assert first.haproxy_stats_port != first.haproxy_metrics_port


def test_a_20_kib_url_reaches_the_app_and_is_refused_in_the_specs_format(api_url):
    """HAProxy's default 16 KiB buffer answered such a request with its own HTML 400."""
    resp = httpx.get(f"{api_url}/api/jobs", params={"status": "x" * 20_000}, timeout=30)
    assert resp.status_code == 400 and resp.headers["content-type"].startswith("application/json"), resp.text[:200]
    assert {"detail", "error_code", "timestamp"} <= resp.json().keys()
