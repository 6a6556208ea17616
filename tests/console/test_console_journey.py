"""A person's whole path through the console, in a real browser against the real Serve app:
upload, start a job from the form, watch it train live, see it complete and its evaluation,
reload and find the same view, ask the playground, export GGUF q8_0 and download the ZIP.
Every request stays on the API's origin and the page logs no error."""

from __future__ import annotations

import hashlib
import json
import re
import time
import zipfile

import httpx
import pytest
from playwright.sync_api import expect

from sienn_ray.data.demo import demo_records

# The README's demo settings (batch_size 4 is the default) shortened to a few hundred steps, with a
# validation split so the job also has an eval-loss curve and an evaluation.
FORM = {"num_epochs": "30", "learning_rate": "0.005", "max_length": "128", "lora_r": "16",
        "lora_alpha": "32", "validation_split": "0.2", "warmup_ratio": "0.1"}
ADVANCED = {"lora_dropout": "0"}


def _watch_training(c, timeout_s: float = 600) -> tuple[set[float], set[int]]:
    """Read the live job page until it says completed: the progress values and loss-point counts
    it showed while the job was running (and a screenshot of it running)."""
    page = c.page
    progress, points = set(), set()
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        status = page.locator("h1 [data-status]").get_attribute("data-status")
        if status == "running":
            progress.add(page.locator("#job-overview progress").evaluate("p => p.value"))
            points.add(int(page.locator(".chart").first.get_attribute("data-points")))
            if len(points - {0}) == 2:
                c.shot("job-running")
        if status in ("completed", "failed", "cancelled"):
            assert status == "completed", page.locator("#job-message").inner_text()
            return progress, points
        page.wait_for_timeout(300)
    raise AssertionError(f"the job did not complete in {timeout_s} s")


@pytest.mark.slow
def test_console_journey_from_upload_to_download(console, api_url, tmp_path):
    records = demo_records()
    c = console()
    page = c.page

    # Upload, read the report, go to the form from it.
    c.open("/datasets")
    page.fill("#dataset-name", "demo")
    data = "".join(json.dumps(r) + "\n" for r in records).encode()
    page.set_input_files("#dataset-file", files=[{"name": "demo.jsonl", "mimeType": "application/json", "buffer": data}])
    expect(page.locator("#upload-result [data-fact=samples]")).to_have_text(str(len(records)))
    page.locator("#upload-result").get_by_role("link", name="Train on it").click()

    # Start a job from the generated form.
    form = page.locator("#new-job-form")
    expect(form.locator("#job-model")).to_have_value("sienn-tiny-gpt2")
    for name, value in FORM.items():
        form.locator(f"[data-field={name}] input").fill(value)
    form.locator("summary", has_text="Advanced settings").click()
    for name, value in ADVANCED.items():
        form.locator(f"[data-field={name}] input").fill(value)
    with page.expect_response(lambda r: r.url.endswith("/api/start-finetuning")) as started:
        form.locator("#start-job").click()
    assert started.value.status == 200, started.value.text()
    job_id = started.value.json()["job_id"]
    sent = json.loads(c.posts("/api/start-finetuning")[0].post_data)
    assert sent["config"] == {k: float(v) if "." in v else int(v) for k, v in {**FORM, **ADVANCED}.items()}
    expect(page).to_have_url(re.compile(f"#/jobs/{job_id}$"))

    # Watch it live, to completion.
    progress, points = _watch_training(c)
    assert len(progress) >= 2 and len(points) >= 2 and max(points) > 0, (progress, points)
    expect(page.locator("#job-overview progress")).to_have_js_property("value", 100)
    loss_chart = page.locator(".chart").first
    assert int(loss_chart.get_attribute("data-points-train_loss")) > 0
    assert int(loss_chart.get_attribute("data-points-eval_loss")) > 0
    assert int(page.locator(".chart").nth(1).get_attribute("data-points")) > 0  # learning rate
    expect(page.locator("#job-events")).to_contain_text("completed")
    evaluation_route = "/api/jobs/{job_id}/evaluation" in httpx.get(f"{api_url}/openapi.json").json()["paths"]
    if evaluation_route:
        expect(page.locator("#job-evaluation [data-evaluation=report] tr[data-figure=eval_loss]")).to_be_visible()
    else:  # the evaluation endpoint is not in this tree yet: the section says so
        expect(page.locator("#job-evaluation [data-evaluation=none]")).to_contain_text("No evaluation yet")

    # A reload restores the same live view.
    page.reload()
    expect(page.locator("h1")).to_contain_text(job_id)
    expect(page.locator("h1 [data-status=completed]")).to_be_visible()
    expect(loss_chart).not_to_have_attribute("data-points", "0")
    c.shot("job-completed")

    # The playground answers with the fine-tune and its base, streamed.
    page.get_by_role("link", name="Try it in the playground").click()
    expect(page.locator("#pg-target")).to_have_value(f"job:{job_id}")
    page.fill("#pg-prompt", records[0]["instruction"])
    page.locator("summary", has_text="Sampling").click()
    page.fill("[data-field=temperature] input", "0")
    page.fill("[data-field=max_length] input", "48")
    page.click("#pg-generate")
    panes = page.locator("#pg-panes .pane")
    for i in range(2):
        expect(panes.nth(i)).to_have_attribute("data-finished", re.compile("stop|length"), timeout=120_000)
    assert page.locator("[data-output=tuned]").inner_text().strip()
    c.shot("playground-trained")

    # Export GGUF q8_0 and download the ZIP.
    c.open(f"/exports?job={job_id}")
    page.check("input[name=format][value=gguf]")
    page.select_option("#export-quant", "q8_0")
    page.click("#start-export")
    done = page.locator("[data-export][data-status=completed]")
    expect(done).to_be_visible(timeout=300_000)
    sha = done.locator("tr", has_text=".gguf").locator("code.hash").inner_text()
    with page.expect_download() as download:
        done.get_by_role("button", name=re.compile("Download ZIP")).click()
    download.value.save_as(tmp_path / "export.zip")
    with zipfile.ZipFile(tmp_path / "export.zip") as archive:
        (gguf,) = [n for n in archive.namelist() if n.endswith("-q8_0.gguf")]
        blob = archive.read(gguf)
    assert blob[:4] == b"GGUF" and hashlib.sha256(blob).hexdigest() == sha
    c.shot("exports-trained")
    c.assert_clean()


@pytest.mark.slow
def test_cancel_a_running_job_from_its_page(console, api_url, demo_dataset_id):
    """Cancel (and, where the API has them, pause and resume first) from the job page."""
    resp = httpx.post(f"{api_url}/api/start-finetuning", timeout=60, json={
        "dataset_id": demo_dataset_id, "model_name": "sienn-tiny-gpt2", "config": {"num_epochs": 1000}})
    assert resp.status_code == 200, resp.text
    job_id = resp.json()["job_id"]
    c = console()
    c.open(f"/jobs/{job_id}")
    status = c.page.locator("h1 [data-status]")
    expect(status).to_have_attribute("data-status", "running", timeout=300_000)

    # The jobs table shows it live, with its progress and time left.
    c.open("/jobs")
    row = c.page.locator(f"#jobs-table tr[data-job={job_id}]")
    expect(row).to_have_attribute("data-status", "running")
    expect(row.locator("td[data-label=ETA]")).to_have_text(re.compile(r"\d+ (s|min)|any moment"))
    c.shot("jobs-running")
    row.get_by_role("link", name=job_id).click()
    paths = httpx.get(f"{api_url}/openapi.json").json()["paths"]
    if "/api/jobs/{job_id}/pause" in paths and "/api/jobs/{job_id}/resume" in paths:
        c.page.click("#pause-job")
        expect(status).to_have_attribute("data-status", "paused", timeout=120_000)
        c.shot("job-paused")
        c.page.click("#resume-job")
        expect(status).not_to_have_attribute("data-status", "paused", timeout=60_000)
        expect(status).to_have_attribute("data-status", "running", timeout=300_000)
    else:
        expect(c.page.locator("#pause-job")).to_have_count(0)  # this API has no pause: no button
    c.page.click("#cancel-job")
    c.page.locator("dialog.confirm").get_by_role("button", name="Cancel job").click()
    expect(status).to_have_attribute("data-status", "cancelled", timeout=120_000)
    expect(c.page.locator("#cancel-job")).to_have_count(0)
    assert httpx.get(f"{api_url}/api/jobs/{job_id}").json()["status"] == "cancelled"
    c.assert_clean()
