"""The console against the real API with auth required: its assets load without a key, the first
refused request opens the key dialog with the server's message, a wrong key is refused in the dialog,
and the right one shows this tenant's data (and only it) in every later request."""

from __future__ import annotations

import json

import pytest
from playwright.sync_api import expect
from security_testkit import HTTP, SECURE_ENV, SecureApps, create_key

from sienn_ray.api.security import NEED_KEY


@pytest.fixture(scope="module")
def api_url(api_url, ray_session, registry, tmp_path_factory):
    """In this module the console fixtures open an auth-required API process instead of the session's
    app (auth off), which stays up: its inference deployment answers this process's inference calls."""
    apps = SecureApps(ray_session.get_runtime_context().gcs_address, tmp_path_factory.mktemp("api-logs"))
    try:
        yield apps.start(**SECURE_ENV)
    finally:
        apps.stop()


def _upload(url: str, headers: dict, name: str) -> None:
    data = "".join(json.dumps({"instruction": f"q{i}", "output": f"a{i}"}) + "\n" for i in range(3))
    resp = HTTP.post(f"{url}/api/upload-dataset", files={"file": (name, data.encode())}, headers=headers,
                      timeout=60)
    assert resp.status_code == 200, resp.text


def test_console_asks_for_the_key_and_uses_it(console, api_url, registry):
    url = api_url
    mine = create_key(registry, "console-tenant")
    other = create_key(registry, "console-other")
    _upload(url, mine.headers, "mine-console.jsonl")
    _upload(url, other.headers, "theirs-console.jsonl")

    c = console()
    c.open("/datasets")
    dialog = c.page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(c.page.locator("#key-message")).to_have_text(NEED_KEY)
    c.shot("auth-key-dialog")

    c.page.fill("#key-input", "sienn_not_a_key")
    c.page.click("#key-form button[type=submit]")
    expect(dialog).to_be_visible()
    expect(c.page.locator("#key-message")).to_contain_text("The key was refused")
    expect(c.page.locator("#key-message")).to_have_class("error")

    c.page.fill("#key-input", mine.key)
    c.page.click("#key-form button[type=submit]")
    expect(dialog).to_be_hidden()
    listed = c.page.locator("#dataset-list")
    expect(listed).to_contain_text("mine-console.jsonl")
    expect(listed).not_to_contain_text("theirs-console.jsonl")
    expect(c.page.locator("#key-state")).to_contain_text("API key set")
    assert c.page.evaluate("sessionStorage.getItem('sienn.apiKey')") == mine.key
    c.shot("auth-key-accepted")

    api_calls = [r for r in c.requests if "/api/" in r.url]
    assert api_calls[-1].headers.get("authorization") == f"Bearer {mine.key}"
    assert not [r for r in c.requests if "/console/" in r.url and r.headers.get("authorization")]
    c.assert_clean()
