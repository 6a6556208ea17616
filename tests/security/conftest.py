"""Fixtures of the security tests: API keys made through the session registry, and API processes
with auth required (``secure_app.py``) next to the session's Serve app (auth off)."""

from __future__ import annotations

import pytest
from security_testkit import SECURE_ENV, Key, SecureApps, create_key


@pytest.fixture(scope="session")
def make_key(registry):
    """Factory: a new API key (see ``security_testkit.create_key``)."""

    def _make(name: str, **kwargs) -> Key:
        key = create_key(registry, name, **kwargs)
        _make.created.append(key)
        return key

    _make.created = []  # every key made this session, for the secret-leak sweep
    return _make


@pytest.fixture(scope="module")
def secure_apps(ray_session, api_url, registry, tmp_path_factory):
    """Factory of auth-required API processes on this session's cluster (the inference deployment of
    the session app answers their inference calls)."""
    apps = SecureApps(ray_session.get_runtime_context().gcs_address, tmp_path_factory.mktemp("api-logs"))
    yield apps
    apps.stop()


@pytest.fixture(scope="module")
def secure_url(secure_apps) -> str:
    return secure_apps.start(**SECURE_ENV)
