// Datasets: upload (pick or drop, with progress), the validation report, preview, list and delete.
import { api, ApiError, upload } from "../api.js";
import {
  card, dataTable, errorBox, errorText, facts, formatBytes, formatDate, formatNumber, h, plural, replace, toast,
} from "../dom.js";
import { confirmDialog, pager } from "./widgets.js";

const PAGE_SIZE = 20;

/** #/datasets: the upload card and the list. */
export async function datasetsPage(main, ctx) {
  const list = h("div", { id: "dataset-list" });
  const refresh = () => renderList(list, ctx);
  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Datasets"),
      h("p", { class: "muted" }, "Instruction or chat data as CSV, JSON or JSONL. Every upload is validated; "
        + "the same bytes always give the same dataset id.")),
    uploadCard(ctx, refresh),
    card("Uploaded datasets", list),
  );
  await refresh();
}

function uploadCard(ctx, onUploaded) {
  const fileInput = h("input", { id: "dataset-file", type: "file", class: "visually-hidden", accept: ".csv,.json,.jsonl,.txt" });
  const nameInput = h("input", { id: "dataset-name", type: "text", placeholder: "e.g. support answers v2", maxlength: 200 });
  const bar = h("progress", { max: 100, value: 0, id: "upload-progress", "aria-label": "Upload progress" });
  const barText = h("span", { class: "progress-text" }, "");
  const progress = h("div", { class: "progress upload-progress", hidden: true }, bar, barText);
  const result = h("div", { id: "upload-result", "aria-live": "polite" });
  const zone = h("label", { class: "dropzone", for: "dataset-file" },
    h("strong", {}, "Drop a file here"), h("span", {}, " or "), h("span", { class: "like-link" }, "choose one"),
    h("span", { class: "muted block" }, "CSV, JSON or JSONL · instruction/input/output or chat messages"));

  const send = async (file) => {
    if (!file) return;
    const form = new FormData();
    form.append("file", file, file.name);
    if (nameInput.value.trim()) form.append("name", nameInput.value.trim());
    progress.hidden = false;
    progress.classList.remove("refused");
    replace(result, h("p", { class: "muted" }, `Uploading ${file.name} (${formatBytes(file.size)})…`));
    try {
      const record = await upload("/api/upload-dataset", form, (loaded, total) => {
        bar.value = Math.round((100 * loaded) / total);
        barText.textContent = loaded < total ? `${bar.value}%` : "Validating…";
      });
      bar.value = 100;
      barText.textContent = "Done";
      replace(result,
        h("div", { class: "alert success", role: "status" }, h("strong", {}, `${record.filename} is valid: `),
          `${plural(record.total_samples, "sample")}. `,
          h("a", { href: `#/new?dataset=${record.dataset_id}`, class: "button primary small" }, "Train on it")),
        datasetReport(record));
      toast(`Uploaded ${record.filename}`, "success");
      onUploaded();
    } catch (err) {
      barText.textContent = "Refused";
      progress.classList.add("refused");
      replace(result, uploadError(err, file));
    } finally {
      fileInput.value = "";
    }
  };

  fileInput.addEventListener("change", () => send(fileInput.files[0]));
  for (const type of ["dragenter", "dragover"]) {
    zone.addEventListener(type, (e) => {
      e.preventDefault();
      zone.classList.add("over");
    });
  }
  for (const type of ["dragleave", "drop"]) zone.addEventListener(type, () => zone.classList.remove("over"));
  zone.addEventListener("drop", (e) => {
    e.preventDefault();
    send(e.dataTransfer.files[0]);
  });

  return card("Upload a dataset",
    h("div", { class: "upload-grid" },
      h("div", {}, zone, fileInput),
      h("div", { class: "field" }, h("label", { for: "dataset-name" }, "Name (optional)"), nameInput,
        h("p", { class: "hint" }, "Shown in lists instead of the file name."))),
    progress, result);
}

function uploadError(err, file) {
  if (!(err instanceof ApiError) || !err.errors.length) return errorBox(err);
  return h("div", { class: "alert error", role: "alert", id: "upload-errors" },
    h("strong", {}, `${file.name} was refused (${err.code || err.status}). Every problem found:`),
    h("ul", { class: "problems" }, err.errors.map((e) => h("li", {}, e))));
}

async function renderList(el, ctx) {
  const page = Number(ctx.query.get("page") || 1);
  try {
    const data = await api(`/api/datasets?limit=${PAGE_SIZE}&offset=${(page - 1) * PAGE_SIZE}`);
    replace(el, dataTable([
      { label: "Name", cell: (d) => h("a", { href: `#/datasets/${d.dataset_id}` }, d.name || d.filename) },
      { label: "Format", cell: (d) => `${d.format} · ${d.kind}` },
      { label: "Samples", class: "num", cell: (d) => formatNumber(d.total_samples) },
      { label: "Size", class: "num", cell: (d) => formatBytes(d.size_bytes) },
      { label: "Uploaded", cell: (d) => formatDate(d.uploaded_at) },
      { label: "Checks", cell: (d) => checksSummary(d.validation) },
      {
        label: "Actions", class: "actions-cell",
        cell: (d) => h("div", { class: "row-actions" },
          h("a", { href: `#/new?dataset=${d.dataset_id}`, class: "button small" }, "Train"),
          h("button", { type: "button", class: "small danger", onclick: () => remove(d, () => renderList(el, ctx)) }, "Delete")),
      },
    ], data.datasets, { empty: "No dataset yet: upload one above." }),
    pager(data, page, PAGE_SIZE, (p) => ctx.navigate("/datasets", { page: p })));
  } catch (err) {
    replace(el, errorBox(err));
  }
}

function checksSummary(v) {
  const warn = v.warnings.length;
  return h("span", { class: `badge ${warn ? "warn" : "ok"}` }, warn ? `${warn} warning${warn > 1 ? "s" : ""}` : "clean");
}

async function remove(d, after) {
  const ok = await confirmDialog(`Delete dataset “${d.name || d.filename}”?`,
    "Its stored rows are removed. Jobs that already used it keep their adapters.", "Delete");
  if (!ok) return;
  try {
    await api(`/api/datasets/${d.dataset_id}`, { method: "DELETE" });
    toast(`Deleted ${d.name || d.filename}`, "success");
    after();
  } catch (err) {
    toast(errorText(err), "error");
  }
}

/** #/datasets/<id>: one dataset's full report. */
export async function datasetPage(main, ctx, datasetId) {
  const record = await api(`/api/datasets/${datasetId}`);
  main.append(
    h("div", { class: "page-head" },
      h("p", { class: "crumbs" }, h("a", { href: "#/datasets" }, "Datasets"), " / "),
      h("h1", {}, record.name || record.filename),
      h("div", { class: "head-actions" },
        h("a", { href: `#/new?dataset=${record.dataset_id}`, class: "button primary" }, "Train on it"),
        h("button", { type: "button", class: "danger", onclick: () => remove(record, () => ctx.navigate("/datasets")) }, "Delete"))),
    datasetReport(record));
}

/** The validation report of a dataset record: facts, columns, aliases, nulls, problems, preview. */
export function datasetReport(d) {
  const v = d.validation;
  const mapping = Object.entries(v.column_mapping || {});
  return h("div", { class: "report", "data-dataset": d.dataset_id },
    card("Summary", facts([
      ["Dataset id", h("code", {}, d.dataset_id)],
      ["File", d.filename],
      ["Format", h("span", { "data-fact": "format" }, d.format)],
      ["Kind", d.kind],
      ["Samples", h("span", { "data-fact": "samples" }, formatNumber(d.total_samples))],
      ["Size", formatBytes(d.size_bytes)],
      ["Tokens (estimate)", formatNumber(d.total_tokens_estimate)],
      ["Longest record", `${formatNumber(d.max_chars)} characters`],
      ["Uploaded", formatDate(d.uploaded_at)],
      ["sha256", h("code", { class: "hash" }, d.sha256)],
    ])),
    statisticsCard(d),
    h("div", { class: "two-col" },
      card("Columns and aliases",
        dataTable([
          { label: "Column", cell: (c) => h("code", {}, c) },
          { label: "Used as", cell: (c) => (v.column_mapping[c] ? h("span", { class: "badge ok" }, v.column_mapping[c]) : h("span", { class: "muted" }, "ignored")) },
          { label: "Empty values", class: "num", cell: (c) => formatNumber(v.null_counts[c] ?? 0) },
        ], v.columns, { caption: mapping.length ? mapping.map(([from, to]) => `${from} → ${to}`).join(", ") : null })),
      card("Problems", problemList("Errors", v.errors, "error"), problemList("Warnings", v.warnings, "warn"))),
    card(`Preview (first ${d.preview.length} records)`, previewTable(d.preview)));
}

/** Token lengths, truncation and duplicates as a default job will see them (none on older records). */
function statisticsCard(d) {
  const s = d.validation.statistics;
  if (!s) return card("Statistics", h("p", { class: "muted", "data-stats": "none" }, "No statistics for this dataset."));
  const t = s.tokens;
  const sample = s.sampled_rows < d.total_samples ? ` (a sample of ${plural(s.sampled_rows, "row")})` : "";
  return card("Statistics", facts([
    ["Tokens per example", h("span", { "data-fact": "tokens" },
      `min ${formatNumber(t.min)} · median ${formatNumber(t.p50)} · p90 ${formatNumber(t.p90)} · `
      + `p99 ${formatNumber(t.p99)} · max ${formatNumber(t.max)}`)],
    [`Truncated at ${formatNumber(s.max_length)} tokens`,
      h("span", { "data-fact": "truncated" }, `${formatNumber(100 * s.truncated_share, 1)}% of examples`)],
    ["Duplicate rows", h("span", { "data-fact": "duplicates" }, formatNumber(s.duplicate_rows))],
    ["Counted with", `the ${s.tokenizer} tokenizer${sample}`],
  ]));
}

function problemList(title, items, kind) {
  if (!items.length) return h("p", { class: "muted", "data-problems": kind }, `No ${title.toLowerCase()}.`);
  return h("div", { "data-problems": kind },
    h("h3", {}, `${title} (${items.length})`),
    h("ul", { class: `problems ${kind}` }, items.map((e) => h("li", {}, e))));
}

function previewTable(rows) {
  const columns = [...new Set(rows.flatMap((r) => Object.keys(r)))];
  return dataTable(columns.map((c) => ({
    label: c,
    cell: (r) => h("div", { class: "cell-text" }, typeof r[c] === "string" ? r[c] : JSON.stringify(r[c] ?? "")),
  })), rows, { empty: "No rows to preview." });
}
