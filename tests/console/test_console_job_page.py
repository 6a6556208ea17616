"""The job page, the API key prompt, narrow windows and the keyboard, in a real browser.

Two answers the API in this tree cannot give yet are played by Playwright's request routing,
each clearly limited to one route: ``GET /api/jobs/{id}/evaluation`` answering a report (the
evaluation package adds it), and 401 ``UNAUTHORIZED`` for requests without the right key (the
API-keys work adds it). Everything else is the real Serve app.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import expect


def _report(job_id: str) -> dict:
    """A completed evaluation in the shape of ``schemas/evaluation.py``'s EvaluationReport."""
    scores = lambda em, f1, rl: {"exact_match": em, "token_f1": f1, "rouge_l": rl}  # noqa: E731
    figures = lambda loss, em, f1, rl: {"eval_loss": loss, "perplexity": round(2.718281828 ** loss, 4),  # noqa: E731
                                        "exact_match": em, "token_f1": f1, "rouge_l": rl, "loss_tokens": 40,
                                        "generated_rows": 2, "generated_tokens": 30}
    report = {
        "job_id": job_id, "status": "completed", "source": "validation_split",
        "started_at": "2026-01-02T10:00:00Z", "finished_at": "2026-01-02T10:00:07Z", "duration_seconds": 7.0,
        "rows_used": [3, 8], "rows_dropped": [], "eval_samples": 20, "max_new_tokens": 64,
        "base": figures(4.5, 0.0, 0.1, 0.12), "tuned": figures(1.25, 0.5, 0.8, 0.75),
        "deltas": {"eval_loss": -3.25, "perplexity": -86.5, "exact_match": 0.5, "token_f1": 0.7, "rouge_l": 0.63},
        "rows": [
            {"row": 3, "prompt": "What is the capital of Peru?", "input": None, "reference": "Lima.",
             "base_output": "The the the", "tuned_output": "Lima.",
             "base_scores": scores(0, 0, 0), "tuned_scores": scores(1, 1, 1)},
            {"row": 8, "prompt": "Name a prime.", "input": "below ten", "reference": "Seven.",
             "base_output": "Paris", "tuned_output": "Three.",
             "base_scores": scores(0, 0.2, 0.24), "tuned_scores": scores(0, 0.6, 0.5)},
        ],
    }
    try:  # once the evaluation package is in the tree, the stand-in must match its schema
        from sienn_ray.schemas.evaluation import EvaluationReport
    except ImportError:
        return report
    return EvaluationReport.model_validate(report).model_dump(mode="json")


def test_job_page_shows_the_evaluation_base_vs_tuned(console, make_completed_job):
    job_id, other_id = make_completed_job(seed=11), make_completed_job(seed=12)
    c = console()
    c.context.route(re.compile(rf"/api/jobs/{job_id}/evaluation$"),
                    lambda route: route.fulfill(json=_report(job_id)))
    c.open(f"/jobs/{job_id}")
    section = c.page.locator("#job-evaluation [data-evaluation=report]")
    expect(section).to_be_visible()
    loss = section.locator("tr[data-figure=eval_loss]")
    expect(loss).to_contain_text("4.5")
    expect(loss).to_contain_text("1.25")
    expect(loss.locator(".better")).to_have_text("-3.25")  # lower loss is better
    expect(section.locator("tr[data-figure=rouge_l] .better")).to_have_text("+0.63")
    answers = section.locator(".eval-rows tbody tr")
    expect(answers).to_have_count(2)
    expect(answers.nth(0)).to_contain_text("What is the capital of Peru?")
    expect(answers.nth(0)).to_contain_text("The the the")
    expect(answers.nth(1)).to_contain_text("below ten")
    expect(c.page.locator("h1 [data-status=completed]")).to_be_visible()
    expect(c.page.get_by_role("link", name="Try it in the playground")).to_have_attribute(
        "href", f"#/playground?job={job_id}")
    expect(c.page.locator("#cancel-job")).to_have_count(0)  # nothing to cancel once completed
    c.shot("job-evaluation")

    # A job without an evaluation says so, from the API's 404.
    c.open(f"/jobs/{other_id}")
    expect(c.page.locator("#job-evaluation [data-evaluation=none]")).to_contain_text("No evaluation yet")
    expect(c.page.locator(".chart").first).to_contain_text("No steps were recorded")
    c.assert_clean()


def _guard_with_key(c, key: str) -> list[str | None]:
    """Answer 401 like the API with auth on, unless the request carries ``Bearer <key>``."""
    seen: list[str | None] = []

    def protected(url: str) -> bool:
        path = urlsplit(url).path
        return path.startswith(("/api/", "/v1/")) or path == "/openapi.json"

    def guard(route):
        sent = route.request.headers.get("authorization")
        seen.append(sent)
        if sent == f"Bearer {key}":
            route.continue_()
            return
        route.fulfill(status=401, headers={"WWW-Authenticate": 'Bearer realm="sienn-ray"'}, json={
            "detail": "Missing or unknown API key", "error_code": "UNAUTHORIZED", "timestamp": "2026-01-01T00:00:00Z"})

    c.context.route(protected, guard)
    return seen


def test_api_key_prompt_refuses_a_wrong_key_and_keeps_the_right_one_for_the_tab(console):
    c = console()
    seen = _guard_with_key(c, "right-key")
    c.page.goto(f"{c.api_url}/#/jobs")
    dialog = c.page.locator("#key-dialog")
    expect(dialog).to_be_visible()
    expect(dialog).to_contain_text("Missing or unknown API key")
    expect(c.page.locator("#key-input")).to_be_focused()
    c.shot("auth-prompt")
    c.page.fill("#key-input", "wrong-key")
    c.page.keyboard.press("Enter")
    expect(dialog).to_be_visible()
    expect(c.page.locator("#key-message")).to_contain_text("The key was refused")
    c.shot("auth-refused")
    c.page.fill("#key-input", "right-key")
    c.page.get_by_role("button", name="Use key").click()
    expect(dialog).to_be_hidden()
    expect(c.page.locator("#jobs-table table")).to_be_visible()
    assert c.page.evaluate("sessionStorage.getItem('sienn.apiKey')") == "right-key"
    assert "Bearer wrong-key" in seen and seen[-1] == "Bearer right-key"

    # Kept for the tab: a reload asks nothing; another tab has to give it again.
    c.page.reload()
    expect(c.page.locator("#jobs-table table")).to_be_visible()
    expect(dialog).to_be_hidden()
    other = c.context.new_page()
    other.goto(f"{c.api_url}/#/jobs")
    expect(other.locator("#key-dialog")).to_be_visible()
    other.get_by_role("button", name="Cancel").click()
    expect(other.locator("main .alert.error")).to_contain_text("Missing or unknown API key")
    c.assert_clean()


@pytest.mark.parametrize("route", ["/jobs", "/datasets", "/new", "/playground", "/exports", "job"])
def test_a_narrow_window_still_works(console, make_completed_job, route):
    c = console(width=420, height=800)
    name = f"narrow-{route.strip('/')}"
    if route == "job":
        route = f"/jobs/{make_completed_job(seed=21)}"
    c.open(route)
    c.page.wait_for_timeout(500)  # let polled content arrive
    assert c.horizontal_overflow() <= 0, "the page is wider than the window"
    expect(c.page.locator("nav[aria-label=Main] a").first).to_be_visible()
    c.shot(name)
    c.assert_clean()


def test_keyboard_reaches_the_navigation_and_shows_focus(console):
    c = console()
    c.open("/jobs")
    c.page.keyboard.press("Tab")  # the brand link
    c.page.keyboard.press("Tab")  # "Datasets"
    focused = c.page.evaluate("document.activeElement.textContent.trim()")
    assert focused == "Datasets"
    outline = c.page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline not in ("", "none")
    c.page.keyboard.press("Enter")
    expect(c.page).to_have_url(re.compile("#/datasets$"))
    expect(c.page.locator("h1")).to_have_text("Datasets")
    c.assert_clean()
