"""Headless Chromium (Debian's package, no browser download) driven by Playwright's Python client
against the real Serve app. Every page a test opens is watched: each request it makes, console
errors, uncaught exceptions, Content-Security-Policy violations and 5xx answers;
``Watched.assert_clean`` fails the test on any of them. Chromium also logs every 4xx answer to a
fetch as a console error ("Failed to load resource"); outside the console's own files (``/`` and
``/console/...``) those are the API refusing a request in its error format, which the page shows
the person, so they alone are not counted. Screenshots go to ``$SIENN_ARTIFACTS/console`` (default
``tests/artifacts/console``, git-ignored)."""

from __future__ import annotations

import os
import re
from pathlib import Path
from urllib.parse import urlsplit

import pytest

CHROMIUM = os.environ.get("SIENN_CHROMIUM", "/usr/bin/chromium")
# No sandbox: tests run as root in CI; the rest keeps Chromium from calling home or updating.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]
ROOT = Path(__file__).resolve().parents[2]
_API_REFUSAL = re.compile(r"^Failed to load resource: the server responded with a status of 4\d\d\b")

# Reports every CSP violation to the test, across reloads (bindings survive navigation).
_CSP_WATCH = """
document.addEventListener("securitypolicyviolation",
  (e) => window.__sienn_csp(`${e.violatedDirective} blocked ${e.blockedURI || "inline"} in ${e.sourceFile || ""}`));
"""


# Module scope, not session: Playwright's sync API keeps an asyncio loop marked running on the main
# thread while it lives, and Ray Serve's sync `.result()` refuses to run under it in later test modules.
@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api", reason="pip install playwright (the test extra)")
    if not Path(CHROMIUM).is_file():
        pytest.skip(f"no Chromium at {CHROMIUM}: tests/system_deps.sh installs Debian's chromium")
    with sync_api.sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture(scope="session")
def artifacts_dir() -> Path:
    folder = Path(os.environ.get("SIENN_ARTIFACTS", ROOT / "tests" / "artifacts")) / "console"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


class Watched:
    """A page plus everything it did that a test may want to refuse."""

    def __init__(self, context, api_url: str, artifacts: Path):
        self.context, self.api_url, self.artifacts = context, api_url, artifacts
        self.requests: list = []  # playwright Request objects, in order
        self.console_errors: list[str] = []
        self.page_errors: list[str] = []
        self.csp_violations: list[str] = []
        self.server_errors: list[str] = []
        context.on("request", lambda req: self.requests.append(req))
        context.on("response", self._response)
        context.expose_function("__sienn_csp", lambda text: self.csp_violations.append(text))
        context.add_init_script(_CSP_WATCH)
        self.page = context.new_page()
        self.page.on("console", self._console)
        self.page.on("pageerror", lambda err: self.page_errors.append(str(err)))

    def _console(self, message) -> None:
        if message.type != "error":
            return
        url = message.location.get("url", "")
        path = urlsplit(url).path
        if _API_REFUSAL.match(message.text) and path != "/" and not path.startswith("/console/"):
            return
        self.console_errors.append(f"{message.text} at {url}")

    def _response(self, response) -> None:
        if response.status >= 500:
            self.server_errors.append(f"{response.status} {response.request.method} {response.url}")

    def open(self, route: str) -> None:
        """Load the console at ``#<route>`` and wait until its first view has rendered."""
        self.page.goto(f"{self.api_url}/#{route}")
        self.page.wait_for_selector("main h1")

    def shot(self, name: str) -> Path:
        path = self.artifacts / f"{name}.png"
        self.page.evaluate("window.scrollTo(0, 0)")  # a sticky header is drawn where the page was scrolled
        self.page.screenshot(path=str(path), full_page=True)
        return path

    def posts(self, path: str) -> list:
        """The POST requests the page sent to ``path``."""
        return [r for r in self.requests if r.method == "POST" and urlsplit(r.url).path == path]

    def outside_requests(self) -> list[str]:
        origin = urlsplit(self.api_url)[:2]
        urls = [r.url for r in self.requests]
        return [u for u in urls if not u.startswith(("data:", "blob:")) and urlsplit(u)[:2] != origin]

    def assert_clean(self) -> None:
        assert self.requests, "the page made no request at all"
        assert not self.outside_requests(), self.outside_requests()
        assert not self.console_errors, self.console_errors
        assert not self.page_errors, self.page_errors
        assert not self.csp_violations, self.csp_violations
        assert not self.server_errors, self.server_errors

    def horizontal_overflow(self) -> int:
        """Pixels the document is wider than the window (0 when nothing sticks out)."""
        return self.page.evaluate("document.documentElement.scrollWidth - window.innerWidth")


@pytest.fixture
def console(browser, api_url, artifacts_dir):
    """Factory: a fresh browser context (own sessionStorage) on the real app, watched."""
    opened: list[Watched] = []

    def _open(width: int = 1280, height: int = 800) -> Watched:
        context = browser.new_context(viewport={"width": width, "height": height}, accept_downloads=True)
        context.set_default_timeout(30_000)
        watched = Watched(context, api_url, artifacts_dir)
        opened.append(watched)
        return watched

    yield _open
    for watched in opened:
        watched.context.close()
