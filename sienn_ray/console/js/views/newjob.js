// New job: a form generated from the API's TrainingConfig schema, the dataset and base model
// picked from the API, an estimate, and every problem of a refused request shown at its field.
import { api, ApiError, openapi } from "../api.js";
import { card, errorBox, formatBytes, formatNumber, h, plural, replace, toast } from "../dom.js";
import { deref, fieldFor, markUnreadable, normalize, placeErrors, properties, readFields } from "../schemaform.js";

// Shown first, in this order; every other TrainingConfig field goes under "Advanced", so fields
// the server adds later appear there without a change here.
const PRIMARY = ["num_epochs", "batch_size", "learning_rate", "max_length", "lora_r", "lora_alpha",
  "validation_split", "lr_scheduler", "warmup_ratio"];
const LABELS = {
  num_epochs: "Epochs", batch_size: "Batch size", learning_rate: "Learning rate", max_length: "Max length (tokens)",
  lora_r: "LoRA rank", lora_alpha: "LoRA alpha", lora_dropout: "LoRA dropout", validation_split: "Validation split",
  lr_scheduler: "LR schedule", warmup_ratio: "Warmup ratio", gradient_accumulation_steps: "Gradient accumulation",
  num_workers: "Workers", cpus_per_worker: "CPUs per worker", use_gpu: "Use GPU", bf16: "bf16",
  deepspeed: "DeepSpeed", target_modules: "Target modules",
};

function requestSchema(doc) {
  const op = doc.paths["/api/start-finetuning"].post;
  return deref(doc, op.requestBody.content["application/json"].schema);
}

/** #/new?dataset=<id>: the form. */
export async function newJobPage(main, ctx) {
  const [doc, datasets, models] = await Promise.all([
    openapi(), api("/api/datasets?limit=200"), api("/api/models"),
  ]);
  const request = requestSchema(doc);
  const config = normalize(doc, request.properties.config);
  const configName = (request.properties.config.$ref || config.title || "TrainingConfig").split("/").pop();
  const fields = properties(doc, configName).map(([name, s]) => fieldFor(doc, name, s, { label: LABELS[name] }));
  const byName = Object.fromEntries(fields.map((f) => [f.name, f]));

  const datasetSelect = h("select", { id: "job-dataset", name: "dataset_id", required: true },
    datasets.datasets.length ? null : h("option", { value: "" }, "No dataset yet: upload one first"),
    datasets.datasets.map((d) => h("option", { value: d.dataset_id },
      `${d.name || d.filename} · ${plural(d.total_samples, "sample")} · ${d.dataset_id}`)));
  const wanted = ctx.query.get("dataset");
  if (wanted) datasetSelect.value = wanted;
  const modelSelect = h("select", { id: "job-model", name: "model_name" },
    models.models.map((m) => h("option", { value: m.name },
      `${m.name}${m.is_default ? " (default)" : ""} · ${m.architecture} · ${formatNumber(m.num_parameters)} params`)));
  modelSelect.value = models.default;
  const top = {
    dataset_id: selectField("dataset_id", "Dataset", datasetSelect,
      h("a", { href: "#/datasets" }, "Upload or inspect datasets")),
    model_name: selectField("model_name", "Base model", modelSelect, modelHint(models, modelSelect)),
  };
  modelSelect.addEventListener("change", () => replace(top.model_name.hintEl, modelHint(models, modelSelect)));

  const estimate = h("div", { id: "estimate", class: "estimate", "aria-live": "polite" }, estimateText(datasets, datasetSelect, byName));
  for (const el of [datasetSelect, ...fields.map((f) => f.input)]) {
    el.addEventListener("change", () => replace(estimate, estimateText(datasets, datasetSelect, byName)));
  }
  const formError = h("div", { id: "form-error" });
  const submit = h("button", { type: "submit", class: "primary", id: "start-job" }, "Start fine-tuning");
  const primary = PRIMARY.filter((n) => byName[n]).map((n) => byName[n]);
  const advanced = fields.filter((f) => !PRIMARY.includes(f.name));

  const form = h("form", { id: "new-job-form", novalidate: true },
    card("Data and base model", h("div", { class: "grid two" }, top.dataset_id.el, top.model_name.el)),
    card("Training", h("div", { class: "grid" }, primary.map((f) => f.el)),
      h("details", { class: "advanced" }, h("summary", {}, `Advanced settings (${advanced.length})`),
        h("div", { class: "grid" }, advanced.map((f) => f.el)))),
    h("div", { class: "submit-bar" }, estimate, formError, submit));

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    replace(formError);
    placeErrors({ ...byName, ...top }, []);
    if (markUnreadable(fields)) {
      form.querySelector("[aria-invalid=true]").focus();
      return;
    }
    submit.disabled = true;
    const body = { dataset_id: datasetSelect.value, model_name: modelSelect.value, config: readFields(fields) };
    try {
      const job = await api("/api/start-finetuning", { method: "POST", json: body });
      toast(`Job ${job.job_id} queued · estimated ${job.estimated_time}`, "success");
      ctx.navigate(`/jobs/${job.job_id}`);
    } catch (err) {
      showErrors(err, { ...byName, ...top }, form, formError);
    } finally {
      submit.disabled = false;
    }
  });
  main.append(h("div", { class: "page-head" }, h("h1", {}, "New fine-tuning job"),
    h("p", { class: "muted" }, "Defaults, bounds and help come from the API's training schema. "
      + "Only values you change are sent; the server fills in the rest and records them with the job.")), form);
}

function selectField(name, label, select, hint) {
  const errorEl = h("p", { class: "field-error", hidden: true });
  const hintEl = h("p", { class: "hint" }, hint);
  return {
    name, hintEl, input: select,
    el: h("div", { class: "field", "data-field": name }, h("label", { for: select.id }, label), select, hintEl, errorEl),
    setError(message) {
      errorEl.hidden = !message;
      errorEl.textContent = message || "";
      if (message) select.setAttribute("aria-invalid", "true");
      else select.removeAttribute("aria-invalid");
    },
  };
}

function modelHint(models, select) {
  const m = models.models.find((x) => x.name === select.value);
  return m ? `${m.source} · ${m.model_type} · context ${formatNumber(m.max_position_embeddings)} tokens` : "";
}

// The server measures throughput and answers the real estimate when the job starts; before that
// the form shows the size of the work so the person sees what the settings imply.
function estimateText(datasets, select, byName) {
  const d = datasets.datasets.find((x) => x.dataset_id === select.value);
  if (!d) return "Pick a dataset to see the size of the run.";
  const epochs = byName.num_epochs ? Number(byName.num_epochs.input.value) || 0 : 0;
  const batch = byName.batch_size ? Number(byName.batch_size.input.value) || 1 : 1;
  const steps = Math.ceil(d.total_samples / batch) * epochs;
  return h("span", {},
    h("strong", {}, "Size of the run: "),
    `${plural(d.total_samples, "sample")} (${formatBytes(d.size_bytes)}, ~${plural(d.total_tokens_estimate * epochs, "token")} over ${plural(epochs, "epoch")}), about ${plural(steps, "optimizer step")} at most. `,
    h("span", { class: "muted" }, "The time estimate, from throughput measured on this cluster, is shown when the job is queued."));
}

function showErrors(err, fieldsByName, form, formError) {
  if (!(err instanceof ApiError) || err.status !== 400) {
    replace(formError, errorBox(err));
    return;
  }
  const problems = err.errors.length ? err.errors : [err.detail];
  const rest = placeErrors(fieldsByName, problems);
  const placed = problems.length - rest.length;
  replace(formError, h("div", { class: "alert error", role: "alert" },
    h("strong", {}, placed ? `The server refused ${problems.length === 1 ? "this value" : `${problems.length} values`}; see the marked fields.` : "The server refused the request."),
    rest.length ? h("ul", {}, rest.map((p) => h("li", {}, p))) : null));
  const first = form.querySelector("[aria-invalid=true]");
  if (first) {
    const details = first.closest("details");
    if (details) details.open = true;
    first.focus();
  }
}
