// Playground: one prompt answered by a fine-tuned job and by its base model side by side, streamed
// token by token from POST /api/test-model (stream: true) with the sampling controls of its schema.
import { api, openapi, streamEvents } from "../api.js";
import { card, errorText, formatNumber, h, replace } from "../dom.js";
import { deref, markUnreadable, normalize, placeErrors, readFields, scalarField } from "../schemaform.js";

const SAMPLING = ["max_length", "temperature", "top_p", "top_k", "repetition_penalty", "seed", "stop"];
const LABELS = { max_length: "Max new tokens", top_p: "Top p", top_k: "Top k", repetition_penalty: "Repetition penalty", stop: "Stop strings" };

/** #/playground?job=<id> */
export async function playgroundPage(main, ctx) {
  const [doc, jobs, models] = await Promise.all([
    openapi(), api("/api/jobs?status=completed&limit=200"), api("/api/models"),
  ]);
  const schema = deref(doc, doc.components.schemas.TestModelRequest);
  const sampling = SAMPLING.filter((n) => schema.properties[n])
    .map((n) => scalarField(n, normalize(doc, schema.properties[n]), { label: LABELS[n] }));

  const target = h("select", { id: "pg-target" },
    h("optgroup", { label: "Fine-tuned jobs" }, jobs.jobs.length
      ? jobs.jobs.map((j) => h("option", { value: `job:${j.job_id}` }, `${j.job_id} (${j.model_name})`))
      : h("option", { value: "", disabled: true }, "No completed job yet")),
    h("optgroup", { label: "Base models" }, models.models.map((m) => h("option", { value: `model:${m.name}` }, m.name))));
  const wanted = ctx.query.get("job");
  target.value = wanted && jobs.jobs.some((j) => j.job_id === wanted) ? `job:${wanted}`
    : jobs.jobs.length ? `job:${jobs.jobs[0].job_id}` : `model:${models.default}`;
  const compare = h("input", { type: "checkbox", id: "pg-compare", checked: true });
  const compareLabel = h("label", { for: "pg-compare" }, "");
  const prompt = h("textarea", { id: "pg-prompt", rows: 4, required: true, placeholder: "Ask something, e.g. an instruction from your dataset" });
  const input = h("textarea", { id: "pg-input", rows: 2, placeholder: "Optional context, as in the dataset's input column" });
  const run = h("button", { type: "submit", class: "primary", id: "pg-generate" }, "Generate");
  const stop = h("button", { type: "button", id: "pg-stop", disabled: true }, "Stop");
  const panes = h("div", { class: "two-col panes", id: "pg-panes" });

  const baseOf = () => {
    const [kind, id] = target.value.split(/:(.*)/);
    if (kind !== "job") return null;
    return jobs.jobs.find((j) => j.job_id === id).model_name;
  };
  const syncCompare = () => {
    const base = baseOf();
    compare.disabled = !base;
    compareLabel.textContent = base ? `Also answer with its base model (${base})` : "Base model chosen: nothing to compare";
  };
  target.addEventListener("change", syncCompare);
  syncCompare();

  let controllers = [];
  ctx.onLeave(() => controllers.forEach((c) => c.abort()));
  stop.addEventListener("click", () => controllers.forEach((c) => c.abort()));

  const form = h("form", { id: "pg-form", novalidate: true },
    card("Prompt",
      h("div", { class: "grid two" },
        h("div", { class: "field" }, h("label", { for: "pg-target" }, "Model"), target),
        h("div", { class: "field check" }, compare, compareLabel)),
      h("div", { class: "field" }, h("label", { for: "pg-prompt" }, "Instruction"), prompt,
        h("p", { class: "hint" }, "Ctrl+Enter generates. A job answers with the prompt template it was trained with.")),
      h("div", { class: "field" }, h("label", { for: "pg-input" }, "Input (optional)"), input),
      h("details", { class: "advanced" }, h("summary", {}, "Sampling"), h("div", { class: "grid" }, sampling.map((f) => f.el))),
      h("div", { class: "submit-bar" }, h("span", {}), run, stop)));
  prompt.addEventListener("keydown", (e) => {
    if (e.key === "Enter" && (e.ctrlKey || e.metaKey)) form.requestSubmit();
  });
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!prompt.value.trim()) {
      prompt.focus();
      return;
    }
    placeErrors(Object.fromEntries(sampling.map((f) => [f.name, f])), []);
    if (markUnreadable(sampling)) {
      form.querySelector("details.advanced").open = true;
      form.querySelector("[aria-invalid=true]").focus();
      return;
    }
    const [kind, id] = target.value.split(/:(.*)/);
    const common = { prompt: prompt.value, input: input.value, ...readFields(sampling), stream: true };
    const asks = [[kind === "job" ? "Fine-tuned" : "Base model", id, kind === "job" ? { job_id: id } : { model_name: id }]];
    if (kind === "job" && compare.checked) asks.push(["Base model", baseOf(), { model_name: baseOf() }]);
    controllers = asks.map(() => new AbortController());
    run.disabled = true;
    stop.disabled = false;
    const refused = (err) => {
      const rest = placeErrors(Object.fromEntries(sampling.map((f) => [f.name, f])), err.errors, ["body."]);
      if (rest.length < err.errors.length) form.querySelector("details.advanced").open = true;
    };
    replace(panes, ...asks.map(([title, name, who], i) => answerPane(title, name, { ...common, ...who }, controllers[i].signal, refused)));
    await Promise.allSettled([...panes.children].map((p) => p.done));
    run.disabled = false;
    stop.disabled = true;
  });

  main.append(h("div", { class: "page-head" }, h("h1", {}, "Playground"),
    h("p", { class: "muted" }, "Streamed answers from the inference deployment, the fine-tune next to its base.")),
  form, panes);
}

// One answer, streamed into its pane; a 400 is also handed to `onRefused` (to mark the fields).
function answerPane(title, name, body, signal, onRefused) {
  const text = h("pre", { class: "output", "aria-live": "polite", "data-output": body.job_id ? "tuned" : "base" });
  const stats = h("p", { class: "muted small pane-stats" }, "Waiting for the first token…");
  const pane = h("section", { class: "card pane", "aria-label": `${title} answer` },
    h("h2", {}, title, " ", h("span", { class: "mono small muted" }, name)), text, stats);
  let chunks = 0;
  pane.done = streamEvents("/api/test-model", body, (event, data) => {
    if (event === "token") {
      chunks += 1;
      text.append(data.text);
      stats.textContent = `Streaming… ${chunks} chunks`;
    } else if (event === "done") {
      replace(text, data.generated_text.trim() ? data.generated_text
        : h("span", { class: "muted" }, `(an answer of ${data.tokens_generated} tokens of white space only)`));
      const rate = data.inference_time > 0 ? data.tokens_generated / data.inference_time : 0;
      stats.textContent = `${data.tokens_generated} tokens in ${formatNumber(data.inference_time, 2)} s `
        + `(${formatNumber(rate, 1)} tokens/s) · finished by ${data.finish_reason} · prompt ${data.prompt_tokens} tokens`;
      pane.dataset.finished = data.finish_reason;
    } else if (event === "error") {
      stats.textContent = `Error: ${data.detail}`;
      stats.classList.add("error");
    }
  }, signal).catch((err) => {
    stats.textContent = err.name === "AbortError" ? "Stopped." : `Error: ${errorText(err)}`;
    if (err.name !== "AbortError") stats.classList.add("error");
    if (err.status === 400 && err.errors.length) onRefused(err);
  });
  return pane;
}
