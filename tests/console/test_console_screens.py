"""Each screen of the console in a real browser against the real Serve app (jobs made without
training, so these run in seconds once the app is up). The whole journey with a trained job is
in test_console_journey.py."""

from __future__ import annotations

import hashlib
import json
import re
import zipfile

import httpx
from playwright.sync_api import expect

ALIASED_CSV = "prompt,context,answer,notes\nSay hi,,Hello,x\nWhat,in,,y\nName a colour,,Blue,z\n"
BROKEN_JSONL = '{"instruction": "a", "output": "b"}\n{"instruction": "c", "output": \n["not", "an object"]\n'


def test_datasets_upload_report_drop_and_delete(console, api_url):
    c = console()
    c.open("/datasets")
    c.page.set_input_files("#dataset-file", files=[{"name": "aliases.csv", "mimeType": "text/csv",
                                                    "buffer": ALIASED_CSV.encode()}])
    report = c.page.locator("#upload-result .report")
    expect(report).to_be_visible()
    assert c.page.locator("#upload-progress").evaluate("p => p.value") == 100
    expect(report.locator("[data-fact=format]")).to_have_text("csv")
    expect(report.locator("[data-fact=samples]")).to_have_text("2")
    # Alias mapping and null counts per column, every warning with its row.
    columns = report.locator("table").first
    expect(columns).to_contain_text("prompt → instruction, context → input, answer → output")
    expect(columns.locator("tr", has_text="context")).to_contain_text("2")
    expect(columns.locator("tr", has_text="notes")).to_contain_text("ignored")
    expect(report.locator("[data-problems=warn]")).to_contain_text("(row 3)")
    expect(report.locator("[data-problems=warn]")).to_contain_text("ignored columns: notes")
    expect(report).to_contain_text("Name a colour")  # the preview
    expect(report.locator("[data-fact=tokens]")).to_contain_text("median")  # the statistics
    expect(report.locator("[data-fact=truncated]")).to_have_text("0% of examples")
    expect(report.locator("[data-fact=duplicates]")).to_have_text("0")
    c.shot("datasets-report")

    # A refused file: every problem with its line, and nothing stored.
    before = httpx.get(f"{api_url}/api/datasets").json()["total"]
    c.page.set_input_files("#dataset-file", files=[{"name": "broken.jsonl", "mimeType": "application/json",
                                                    "buffer": BROKEN_JSONL.encode()}])
    problems = c.page.locator("#upload-errors")
    expect(problems).to_contain_text("DATASET_INVALID")
    expect(problems.locator("li", has_text="line 2")).to_be_visible()
    expect(problems.locator("li", has_text="line 3")).to_be_visible()
    assert httpx.get(f"{api_url}/api/datasets").json()["total"] == before
    c.shot("datasets-refused")

    # Dropping a file uploads it too.
    drop = c.page.evaluate_handle("""(text) => { const dt = new DataTransfer();
        dt.items.add(new File([text], 'dropped.jsonl', {type: 'application/json'})); return dt; }""",
                                  '{"instruction": "dropped", "output": "yes"}\n')
    c.page.dispatch_event(".dropzone", "drop", {"dataTransfer": drop})
    expect(c.page.locator("#upload-result .alert.success")).to_contain_text("dropped.jsonl is valid")
    row = c.page.locator("#dataset-list tr", has_text="dropped.jsonl")
    expect(row).to_be_visible()
    c.shot("datasets")

    # Each dataset has its own page with the full report.
    row.get_by_role("link", name="dropped.jsonl").click()
    expect(c.page.locator("h1")).to_have_text("dropped.jsonl")
    expect(c.page.locator(".report [data-fact=samples]")).to_have_text("1")
    c.page.go_back()
    row.get_by_role("button", name="Delete").click()
    c.page.locator("dialog.confirm").get_by_role("button", name="Delete").click()
    expect(c.page.locator("#dataset-list tr", has_text="dropped.jsonl")).to_have_count(0)
    names = [d["filename"] for d in httpx.get(f"{api_url}/api/datasets").json()["datasets"]]
    assert "dropped.jsonl" not in names and "aliases.csv" in names
    c.assert_clean()


def _upload(api_url: str, name: str, text: str) -> str:
    resp = httpx.post(f"{api_url}/api/upload-dataset", files={"file": (name, text.encode())}, timeout=60)
    assert resp.status_code == 200, resp.text
    return resp.json()["dataset_id"]


def test_new_job_form_follows_the_schema_and_puts_errors_at_their_field(console, api_url):
    dataset_id = _upload(api_url, "form.jsonl", '{"instruction": "q", "output": "a"}\n' * 3)
    schema = httpx.get(f"{api_url}/openapi.json").json()["components"]["schemas"]["TrainingConfig"]["properties"]
    c = console()
    c.open(f"/new?dataset={dataset_id}")
    form = c.page.locator("#new-job-form")
    expect(form.locator("#job-dataset")).to_have_value(dataset_id)
    expect(form.locator("#job-model")).to_have_value("sienn-tiny-gpt2")
    # Every field of the schema is in the form, with its default and bounds.
    assert form.locator("[data-field]").count() >= len(schema) + 2
    expect(form.locator("[data-field=num_epochs] input")).to_have_value(str(schema["num_epochs"]["default"]))
    expect(form.locator("[data-field=num_epochs] input")).to_have_attribute("max", "1000")
    assert form.locator("[data-field=lr_scheduler] option").all_inner_texts() == schema["lr_scheduler"]["enum"]
    expect(form.locator("[data-field=lora_r] .hint")).to_contain_text("LoRA rank")
    expect(c.page.locator("#estimate")).to_contain_text("optimizer steps")

    jobs_before = httpx.get(f"{api_url}/api/jobs").json()["total"]
    form.locator("[data-field=lora_r] input").fill("0")
    form.locator("#start-job").click()
    lora_error = form.locator("[data-field=lora_r] .field-error")
    expect(lora_error).to_contain_text("greater than or equal to 1")
    expect(form.locator("[data-field=lora_r] input")).to_be_focused()
    expect(form.locator("[data-field=num_epochs] .field-error")).to_be_hidden()

    # A problem found by the server's own checks (not the schema) lands at its field too.
    form.locator("[data-field=lora_r] input").fill("8")
    form.locator("[data-field=max_length] input").fill("100000")
    form.locator("#start-job").click()
    expect(form.locator("[data-field=max_length] .field-error")).to_contain_text("context length")
    expect(lora_error).to_be_hidden()
    c.shot("new-job-errors")
    assert httpx.get(f"{api_url}/api/jobs").json()["total"] == jobs_before
    c.assert_clean()


def test_jobs_table_filters_and_pages(console, api_url, make_completed_job):
    made = {make_completed_job(seed=i) for i in range(3)}
    c = console()
    c.open("/jobs?status=completed&size=2")
    table = c.page.locator("#jobs-table")
    expect(table.locator("tbody tr")).to_have_count(2)
    expect(table.locator("tbody tr[data-status=completed] progress")).to_have_count(2)
    total = httpx.get(f"{api_url}/api/jobs?status=completed").json()["total"]
    expect(c.page.locator(".pager")).to_contain_text(f"1–2 of {total}")
    seen = set(table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)"))
    c.shot("jobs")
    c.page.get_by_role("button", name="Next →").click()
    expect(c.page.locator(".pager")).to_contain_text(f"3–{min(4, total)} of {total}")
    seen |= set(table.locator("tbody tr").evaluate_all("rows => rows.map(r => r.dataset.job)"))
    assert len(seen) == min(4, total) and (made & seen)
    c.page.select_option("#status-filter", "failed")
    expect(c.page).to_have_url(re.compile(r"#/jobs\?status=failed"))
    expect(table).to_contain_text("No job here")
    c.assert_clean()


def test_playground_streams_the_tuned_model_and_its_base(console, make_completed_job):
    job_id = make_completed_job(seed=7)
    c = console()
    c.open(f"/playground?job={job_id}")
    expect(c.page.locator("#pg-target")).to_have_value(f"job:{job_id}")
    expect(c.page.locator("#pg-compare")).to_be_checked()
    c.page.fill("#pg-prompt", "Name three colours.")
    c.page.locator("summary", has_text="Sampling").click()
    c.page.fill("[data-field=max_length] input", "24")
    c.page.fill("[data-field=temperature] input", "0")
    with c.page.expect_response(lambda r: r.url.endswith("/api/test-model")) as first:
        c.page.locator("#pg-prompt").press("Control+Enter")  # the keyboard shortcut
    assert first.value.headers["content-type"].startswith("text/event-stream")
    panes = c.page.locator("#pg-panes .pane")
    expect(panes).to_have_count(2)
    expect(panes.nth(0)).to_have_attribute("data-finished", re.compile("stop|length"), timeout=120_000)
    expect(panes.nth(1)).to_have_attribute("data-finished", re.compile("stop|length"), timeout=120_000)
    expect(panes.nth(0)).to_contain_text(job_id)
    expect(panes.nth(1)).to_contain_text("sienn-tiny-gpt2")
    for pane in (panes.nth(0), panes.nth(1)):
        expect(pane.locator(".pane-stats")).to_contain_text("tokens/s")
    bodies = [json.loads(r.post_data) for r in c.posts("/api/test-model")]
    assert {("job_id" in b, "model_name" in b) for b in bodies} == {(True, False), (False, True)}
    assert all(b["stream"] is True and b["max_length"] == 24 and b["temperature"] == 0 for b in bodies)
    c.shot("playground")

    # A value the server refuses is marked at its field; text that is no number never leaves.
    c.page.fill("[data-field=temperature] input", "5")
    c.page.click("#pg-generate")
    expect(c.page.locator("[data-field=temperature] .field-error")).to_contain_text("less than or equal to 2")
    c.page.fill("[data-field=temperature] input", "")
    c.page.locator("[data-field=temperature] input").press_sequentially("e")
    sent = len(c.posts("/api/test-model"))
    c.page.click("#pg-generate")
    expect(c.page.locator("[data-field=temperature] .field-error")).to_have_text("Enter a number.")
    assert len(c.posts("/api/test-model")) == sent
    c.assert_clean()


def test_export_gguf_q8_0_and_download_the_zip(console, make_completed_job, tmp_path):
    job_id = make_completed_job(seed=3)
    c = console()
    c.open(f"/exports?job={job_id}")
    expect(c.page.locator("input[name=format][value=gguf]")).to_be_checked()
    expect(c.page.locator("#export-quant")).to_have_value("q8_0")
    c.page.click("#start-export")
    done = c.page.locator("[data-export][data-status=completed]")
    expect(done).to_be_visible(timeout=300_000)
    gguf_row = done.locator("tr", has_text=".gguf")
    shown_sha = gguf_row.locator("code.hash").inner_text()
    assert re.fullmatch(r"[0-9a-f]{64}", shown_sha)
    c.shot("exports")
    with c.page.expect_download() as download:
        done.get_by_role("button", name=re.compile("Download ZIP")).click()
    path = tmp_path / "export.zip"
    download.value.save_as(path)
    with zipfile.ZipFile(path) as archive:
        ggufs = [n for n in archive.namelist() if n.endswith(".gguf")]
        assert len(ggufs) == 1, archive.namelist()
        data = archive.read(ggufs[0])
    assert data[:4] == b"GGUF"
    assert hashlib.sha256(data).hexdigest() == shown_sha
    c.assert_clean()


def test_api_docs_render_without_an_outside_request(console):
    c = console()
    c.page.goto(f"{c.api_url}/docs")
    expect(c.page.locator(".swagger-ui .opblock").first).to_be_visible()
    assert c.page.locator(".swagger-ui .opblock").count() > 10
    c.shot("api-docs")
    c.assert_clean()
