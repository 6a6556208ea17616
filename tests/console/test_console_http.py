"""The console's files as the API serves them: the page, its assets, the security headers, the
vendored libraries. FastAPI's TestClient on the app itself: the console needs no Ray."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from sienn_ray.api.app import create_app
from sienn_ray.api.console import CONTENT_SECURITY_POLICY

ROOT = Path(__file__).resolve().parents[2]
CONSOLE = ROOT / "sienn_ray" / "console"


@pytest.fixture(scope="module")
def client() -> TestClient:
    # A loopback Host: the app refuses others (DNS rebinding), and TestClient's default is testserver.
    return TestClient(create_app(), base_url="http://127.0.0.1")


def test_root_serves_the_page_with_a_self_only_policy(client):
    resp = client.get("/")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert '<script type="module" src="/console/js/main.js">' in resp.text
    policy = resp.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "default-src 'self'" in policy and "unsafe" not in policy and "http" not in policy
    assert resp.headers["x-content-type-options"] == "nosniff"


def test_assets_are_served_as_modules_and_styles(client):
    js = client.get("/console/js/main.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"]
    assert js.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    css = client.get("/console/vendor/uplot/uPlot.min.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    etag = js.headers["etag"]
    assert client.get("/console/js/main.js", headers={"If-None-Match": etag}).status_code == 304


def test_missing_asset_is_a_404_in_the_error_format(client):
    resp = client.get("/console/js/nope.js")
    assert resp.status_code == 404
    assert set(resp.json()) >= {"detail", "error_code", "timestamp"}


@pytest.mark.parametrize("path", ["/console/../api/console.py", "/console/%2e%2e/api/console.py",
                                  "/console/..%2fapi%2fconsole.py", "/console/%2e%2e%2f%2e%2e%2fpyproject.toml"])
def test_no_path_outside_the_console_folder(client, path):
    resp = client.get(path)
    assert resp.status_code == 404
    assert "install_console" not in resp.text and "[project]" not in resp.text


def test_console_routes_are_not_in_the_api_schema(client):
    paths = client.get("/openapi.json").json()["paths"]
    assert "/" not in paths and not any(p.startswith("/console") for p in paths)


def test_every_asset_the_page_and_modules_name_exists():
    """index.html's links and every relative ES-module import resolve to a shipped file."""
    html = (CONSOLE / "index.html").read_text()
    wanted = {CONSOLE / m.removeprefix("/console/") for m in re.findall(r'(?:src|href)="(/console/[^"]+)"', html)}
    for module in CONSOLE.rglob("*.js"):
        for spec in re.findall(r'^import .*? from "(\.[^"]+)";', module.read_text(), flags=re.M):
            wanted.add((module.parent / spec).resolve())
    missing = sorted(str(p.relative_to(CONSOLE)) for p in wanted if not p.is_file())
    assert not missing and len(wanted) > 10, missing


def test_no_markup_from_strings_and_no_outside_urls():
    """Text from the API never becomes HTML, and no file names a host (no CDN, no fonts)."""
    for path in [*CONSOLE.glob("js/**/*.js"), CONSOLE / "index.html", CONSOLE / "app.css"]:
        text = path.read_text()
        assert not re.search(r"\.(inner|outer)HTML\s*=|insertAdjacentHTML|document\.write", text), path
        assert not re.search(r"(https?:)?//[a-z0-9.-]+\.[a-z]{2,}/", text, flags=re.I), path


def test_vendored_files_match_the_manifest_and_the_lockfile():
    """vendor/ is exactly what `npm ci && npm run vendor` writes for the pinned versions."""
    manifest = json.loads((CONSOLE / "vendor" / "MANIFEST.json").read_text())
    lock = json.loads((ROOT / "frontend" / "package-lock.json").read_text())["packages"]
    pinned = json.loads((ROOT / "frontend" / "package.json").read_text())["devDependencies"]
    assert set(manifest) == set(pinned)
    for name, entry in manifest.items():
        assert entry["version"] == pinned[name] == lock[f"node_modules/{name}"]["version"]
        assert "LICENSE" in entry["files"]
        for file, digest in entry["files"].items():
            assert hashlib.sha256((CONSOLE / "vendor" / name / file).read_bytes()).hexdigest() == digest, file


def test_api_docs_come_from_the_vendored_swagger_ui(client):
    resp = client.get("/docs")
    assert resp.status_code == 200
    assert "/console/vendor/swagger-ui-dist/swagger-ui-bundle.js" in resp.text
    assert not re.search(r"https?://", resp.text), "the docs page names an outside host"
    assert '"validatorUrl": null' in resp.text
    assert client.get("/console/vendor/swagger-ui-dist/swagger-ui.css").status_code == 200
    assert client.get("/redoc").status_code == 404  # ReDoc loads its script and fonts from CDNs


def test_package_data_ships_every_console_file():
    """pyproject's package-data globs cover every file under sienn_ray/console (so a wheel has them)."""
    import tomllib

    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["sienn_ray"]
    package = ROOT / "sienn_ray"
    shipped = {p for pattern in globs for p in package.glob(pattern) if p.is_file()}
    present = {p for p in CONSOLE.rglob("*") if p.is_file()}
    assert present - shipped == set()
