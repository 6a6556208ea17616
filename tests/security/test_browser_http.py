"""Browser safety on the real Serve app (the session's, loopback, auth off): DNS rebinding is refused by
Host, a cross-site POST by Origin (also from a real page on another localhost port), CORS stays off,
and JSON bodies over the limit are 413 before anything parses them."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from helpers import free_port
from security_testkit import HTTP

CHROMIUM = "/usr/bin/chromium"
EVIL_ROWS = "".join(json.dumps({"instruction": f"evil {i}", "output": "x"}) + "\n" for i in range(5))


def _dataset_count(reader) -> int:
    return reader.dataset_count()


def test_a_rebinding_host_is_refused_on_every_path(api_url):
    port = urlsplit(api_url).port
    for path in ("/", "/health", "/api/jobs", "/console/js/api.js", "/v1/models"):
        resp = HTTP.get(api_url + path, headers={"Host": f"rebind.example:{port}"})
        assert resp.status_code == 421, path
        body = resp.json()
        assert (body.get("error_code") or body["error"]["code"]) == "HOST_NOT_ALLOWED"
    for host in (f"localhost:{port}", f"127.0.0.1:{port}"):
        assert HTTP.get(api_url + "/api/jobs", headers={"Host": host}).status_code == 200


def test_a_state_change_from_another_origin_is_403_and_stores_nothing(api_url, reader):
    before = _dataset_count(reader)
    files = {"file": ("evil.jsonl", EVIL_ROWS.encode())}
    for origin in ("http://evil.example", "null", f"http://127.0.0.1:{free_port()}"):
        resp = HTTP.post(f"{api_url}/api/upload-dataset", files=files, headers={"Origin": origin})
        assert resp.status_code == 403 and resp.json()["error_code"] == "ORIGIN_NOT_ALLOWED", origin
    cross = HTTP.post(f"{api_url}/api/upload-dataset", files=files, headers={"Sec-Fetch-Site": "cross-site"})
    assert cross.status_code == 403
    v1 = HTTP.post(f"{api_url}/v1/completions", json={}, headers={"Origin": "http://evil.example"})
    assert v1.status_code == 403 and v1.json()["error"]["code"] == "ORIGIN_NOT_ALLOWED"
    assert _dataset_count(reader) == before
    own = HTTP.post(f"{api_url}/api/upload-dataset", files=files, headers={"Origin": api_url})
    assert own.status_code == 200, own.text  # the API's own page (the console) may
    HTTP.delete(f"{api_url}/api/datasets/{own.json()['dataset_id']}")
    assert HTTP.get(f"{api_url}/api/jobs", headers={"Origin": "http://evil.example"}).status_code == 200  # reads


def test_cors_is_off_unless_configured(api_url):
    resp = HTTP.get(f"{api_url}/api/jobs", headers={"Origin": "http://evil.example"})
    assert "access-control-allow-origin" not in resp.headers
    preflight = HTTP.options(f"{api_url}/api/upload-dataset", headers={
        "Origin": "http://evil.example", "Access-Control-Request-Method": "POST"})
    assert "access-control-allow-origin" not in preflight.headers


def test_json_bodies_over_one_mib_are_413_with_or_without_a_length(api_url):
    big = json.dumps({"dataset_id": "ds_0123456789abcdef", "model_name": "x" * (1024 * 1024)}).encode()
    sized = HTTP.post(f"{api_url}/api/start-finetuning", content=big, headers={"Content-Type": "application/json"})
    assert sized.status_code == 413 and sized.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    assert "1048576" in sized.json()["detail"]

    def chunks():
        for i in range(0, len(big), 64 * 1024):
            yield big[i:i + 64 * 1024]

    streamed = HTTP.post(f"{api_url}/api/start-finetuning", content=chunks(),
                          headers={"Content-Type": "application/json"})
    assert streamed.status_code == 413 and streamed.json()["error_code"] == "PAYLOAD_TOO_LARGE"
    v1 = HTTP.post(f"{api_url}/v1/chat/completions", content=big, headers={"Content-Type": "application/json"})
    assert v1.status_code == 413 and "error" in v1.json()
    rows = "".join(json.dumps({"instruction": f"long {i} " + "w" * 2000, "output": "y"}) + "\n" for i in range(1000))
    assert len(rows) > 1024 * 1024
    upload = HTTP.post(f"{api_url}/api/upload-dataset", files={"file": ("big.jsonl", rows.encode())}, timeout=120)
    assert upload.status_code == 200, upload.text[:500]  # uploads keep their own limit
    HTTP.delete(f"{api_url}/api/datasets/{upload.json()['dataset_id']}")


_EVIL_PAGE = """<!doctype html><html><body>
<form id="form" method="POST" enctype="multipart/form-data" action="{api}/api/upload-dataset">
<textarea name="file">{rows}</textarea></form>
<script>
const data = new FormData();
data.append("file", new Blob([{rows_js}], {{type: "application/json"}}), "evil.jsonl");
fetch("{api}/api/upload-dataset", {{method: "POST", mode: "no-cors", body: data}})
  .then(() => {{ document.title = "fetched"; }}, () => {{ document.title = "fetch failed"; }})
  .finally(() => document.getElementById("form").submit());
</script></body></html>"""


@pytest.fixture()
def evil_site(api_url):
    """A page on another localhost port that posts a dataset to the API: a fetch, then a form."""
    page = _EVIL_PAGE.format(api=api_url, rows=EVIL_ROWS.replace("<", "&lt;"), rows_js=json.dumps(EVIL_ROWS))

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's name
            self.send_response(200)
            self.send_header("Content-Type", "text/html")
            self.end_headers()
            self.wfile.write(page.encode())

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()


def test_a_real_page_on_another_port_cannot_post_a_dataset(api_url, reader, evil_site):
    sync_api = pytest.importorskip("playwright.sync_api")
    if not Path(CHROMIUM).is_file():
        pytest.skip("no Chromium")
    before = _dataset_count(reader)
    port = urlsplit(api_url).port
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=[
            "--no-sandbox", "--disable-gpu", "--host-resolver-rules=MAP rebind.example 127.0.0.1"])
        try:
            page = browser.new_page()
            answers = []
            page.on("response", lambda r: answers.append((r.request.method, r.url, r.status)))
            page.goto(evil_site)
            page.wait_for_url(f"{api_url}/api/upload-dataset", timeout=30_000)  # the form went through
            assert "ORIGIN_NOT_ALLOWED" in page.content()
            posts = [status for method, url, status in answers if method == "POST" and "upload-dataset" in url]
            assert posts and all(status == 403 for status in posts), answers
            rebound = page.goto(f"http://rebind.example:{port}/api/jobs")  # DNS rebinding, as a browser does it
            assert rebound.status == 421
        finally:
            browser.close()
    assert _dataset_count(reader) == before
