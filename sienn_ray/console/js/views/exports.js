// Exports: pick a completed job, a format and a quantization (from /api/export-formats), follow the
// export's status, see its files with sizes and sha256, and download the ZIP.
import { api, download } from "../api.js";
import {
  card, dataTable, errorBox, errorText, formatBytes, formatDate, h, replace, statusBadge, toast,
} from "../dom.js";
import { every } from "../live.js";
import { completedJobSelect } from "./widgets.js";

const POLL_MS = 2000;

/** #/exports?job=<id> */
export async function exportsPage(main, ctx) {
  const [{ select: jobSelect, jobs }, formats] = await Promise.all([
    completedJobSelect("export-job", ctx.query.get("job")), api("/api/export-formats"),
  ]);
  main.append(h("div", { class: "page-head" }, h("h1", {}, "Exports"),
    h("p", { class: "muted" }, "Merged safetensors, GGUF for llama.cpp, or an Ollama package, downloaded as one ZIP.")));
  if (!jobs.length) {
    main.append(card(null, h("p", {}, "No completed job yet. ", h("a", { href: "#/new" }, "Start one"), ", then export it here.")));
    return;
  }
  jobSelect.addEventListener("change", () => ctx.navigate("/exports", { job: jobSelect.value }));

  const formatRadios = formats.formats.map((f, i) => h("label", { class: "choice" },
    h("input", { type: "radio", name: "format", value: f.name, checked: f.name === "gguf" || (i === 0 && !formats.formats.some((x) => x.name === "gguf")) }),
    h("span", {}, h("strong", {}, f.name), h("span", { class: "muted block small" }, f.description))));
  const quant = h("select", { id: "export-quant" });
  const quantField = h("div", { class: "field" }, h("label", { for: "export-quant" }, "Quantization"), quant,
    h("p", { class: "hint" }, "q8_0 keeps quality close to f16 at half its size; q4 variants are smallest."));
  const chosen = () => formats.formats.find((f) => f.name === formatRadios.map((l) => l.querySelector("input")).find((r) => r.checked).value);
  const syncQuant = () => {
    const f = chosen();
    quantField.hidden = !f.supports_quantization;
    replace(quant, (f.quantization_levels || []).map((q) => h("option", { value: q }, q)));
    if (f.default_quantization) quant.value = f.default_quantization;
  };
  const list = h("div", { id: "export-list" });
  const startButton = h("button", { type: "submit", class: "primary", id: "start-export" }, "Export");
  const form = h("form", { id: "export-form", novalidate: true },
    h("div", { class: "grid two" },
      h("div", { class: "field" }, h("label", { for: "export-job" }, "Fine-tuned job"), jobSelect),
      quantField),
    h("fieldset", { class: "choices" }, h("legend", {}, "Format"), formatRadios),
    h("div", { class: "submit-bar" }, h("span", {}), startButton));
  form.addEventListener("change", (e) => { if (e.target.name === "format") syncQuant(); });

  let stopPolling = () => {};
  const watch = () => {
    stopPolling();
    stopPolling = every(POLL_MS, () => renderExports(list, jobSelect.value));
  };
  ctx.onLeave(() => stopPolling());
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    const f = chosen();
    const body = { format: f.name, ...(f.supports_quantization ? { quantization: quant.value } : {}) };
    startButton.disabled = true;
    try {
      const started = await api(`/api/export-model/${jobSelect.value}`, { method: "POST", json: body });
      toast(`Export ${started.export_id} ${started.status} · estimated ${started.estimated_time}`, "success");
      watch();
    } catch (err) {
      toast(errorText(err), "error");
    } finally {
      startButton.disabled = false;
    }
  });
  syncQuant();
  main.append(card("New export", form), card("Exports of this job", list));
  watch();
}

// Draw the job's exports; keep polling (true) while one is still processing.
async function renderExports(list, jobId) {
  try {
    const data = await api(`/api/jobs/${jobId}/exports`);
    replace(list, data.exports.length ? data.exports.map(exportCard) : h("p", { class: "muted" }, "No export of this job yet."));
    return data.exports.some((x) => x.status === "processing");
  } catch (err) {
    replace(list, errorBox(err));
    return false;
  }
}

function exportCard(x) {
  const label = x.quantization ? `${x.format} · ${x.quantization}` : x.format;
  const filename = `${x.job_id}-${x.format}${x.quantization ? `-${x.quantization}` : ""}.zip`;
  return h("article", { class: "export", "data-export": x.export_id, "data-status": x.status },
    h("header", {},
      h("h3", {}, label, " ", statusBadge(x.status)),
      x.status === "completed"
        ? h("button", { type: "button", class: "primary small", "data-download": x.export_id, onclick: () => download(x.download_url, filename).catch((err) => toast(errorText(err), "error")) },
          `Download ZIP (${formatBytes(x.total_size_bytes)})`)
        : null),
    h("p", { class: x.status === "failed" ? "error" : "muted" }, x.message,
      x.status === "processing" ? ` · estimated ${x.estimated_time}` : ""),
    h("p", { class: "muted small" }, `${x.export_id} · started ${formatDate(x.created_at)}`,
      x.completed_at ? ` · finished ${formatDate(x.completed_at)}` : ""),
    x.files.length ? dataTable([
      { label: "File", cell: (f) => h("code", {}, f.name) },
      { label: "Size", class: "num", cell: (f) => formatBytes(f.size_bytes) },
      { label: "sha256", cell: (f) => h("code", { class: "hash" }, f.sha256) },
    ], x.files) : null);
}
