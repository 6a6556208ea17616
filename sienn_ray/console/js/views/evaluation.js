// A job's evaluation (GET /api/jobs/{id}/evaluation): base and tuned side by side, then every row.
import { dataTable, formatDate, formatDuration, formatNumber, h } from "../dom.js";

// label, and whether a lower value is better; other numeric figures the server adds are listed too.
const FIGURES = {
  eval_loss: ["Eval loss", true],
  perplexity: ["Perplexity", true],
  exact_match: ["Exact match", false],
  token_f1: ["Token F1", false],
  rouge_l: ["ROUGE-L", false],
};
const SCORE_KEYS = ["exact_match", "token_f1", "rouge_l"];

/** The evaluation section's content for a report, or the reason there is none. */
export function evaluationView(report, job) {
  if (!report) {
    const waiting = job && (job.phase === "evaluating" || !["completed", "failed", "cancelled"].includes(job.status));
    return h("p", { class: "muted", "data-evaluation": "none" },
      waiting ? "No evaluation yet: it runs after training, on the held-out rows."
        : "No evaluation yet for this job. An evaluation runs when a job has a validation split or an eval dataset.");
  }
  if (report.status === "failed") {
    return h("div", { class: "alert error", "data-evaluation": "failed" },
      h("strong", {}, "The evaluation failed; the trained model is kept. "), report.error || "");
  }
  return h("div", { "data-evaluation": "report" },
    h("p", { class: "muted" },
      `Ran ${formatDate(report.finished_at)} in ${formatDuration(report.duration_seconds)} on `
      + `${formatNumber((report.rows_used || []).length)} held-out rows (${report.source || "validation split"}); `
      + `${formatNumber((report.rows || []).length)} answered greedily by both models.`),
    figuresTable(report),
    rowsTable(report.rows || []));
}

function figuresTable(report) {
  const base = report.base || {};
  const tuned = report.tuned || {};
  const keys = [...new Set([...Object.keys(FIGURES), ...Object.keys(base), ...Object.keys(tuned)])]
    .filter((k) => typeof base[k] === "number" || typeof tuned[k] === "number");
  return dataTable([
    { label: "Figure", cell: (k) => (FIGURES[k] ? FIGURES[k][0] : k.replace(/_/g, " ")) },
    { label: "Base", class: "num", cell: (k) => formatNumber(base[k]) },
    { label: "Fine-tuned", class: "num", cell: (k) => formatNumber(tuned[k]) },
    { label: "Change", class: "num", cell: (k) => delta(k, base[k], tuned[k]) },
  ], keys, { caption: "Base model vs fine-tuned model on the same held-out rows", rowAttrs: (k) => ({ "data-figure": k }) });
}

function delta(key, before, after) {
  if (typeof before !== "number" || typeof after !== "number" || !FIGURES[key]) return "—";
  const diff = after - before;
  const lowerIsBetter = FIGURES[key][1];
  const better = lowerIsBetter ? diff < 0 : diff > 0;
  const text = `${diff > 0 ? "+" : ""}${formatNumber(diff, 4)}`;
  return h("span", { class: diff === 0 ? "muted" : better ? "better" : "worse" }, text);
}

function scores(s) {
  if (!s) return null;
  return h("div", { class: "scores" }, SCORE_KEYS.filter((k) => typeof s[k] === "number").map((k) =>
    h("span", { class: "score" }, `${FIGURES[k][0]} ${formatNumber(s[k], 2)}`)));
}

function rowsTable(rows) {
  if (!rows.length) return null;
  return h("details", { class: "eval-rows", open: rows.length <= 5 },
    h("summary", {}, `Answers, row by row (${rows.length})`),
    dataTable([
      { label: "Row", class: "num", cell: (r) => String(r.row) },
      { label: "Prompt", cell: (r) => h("div", { class: "cell-text" }, r.prompt, r.input ? h("div", { class: "muted" }, r.input) : null) },
      { label: "Reference", cell: (r) => h("div", { class: "cell-text" }, r.reference) },
      { label: "Base answer", cell: (r) => h("div", { class: "cell-text" }, r.base_output, scores(r.base_scores)) },
      { label: "Fine-tuned answer", cell: (r) => h("div", { class: "cell-text" }, r.tuned_output, scores(r.tuned_scores)) },
    ], rows));
}
