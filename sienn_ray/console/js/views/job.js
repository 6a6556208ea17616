// One job, live: progress, loss and learning-rate curves, events, evaluation, cancel/pause/resume.
// Everything is read from the API on each poll, so reopening #/jobs/<id> restores the same view.
import { api, apiOrNull, hasRoute } from "../api.js";
import { stepChart } from "../charts.js";
import {
  card, dataTable, errorBox, errorText, eta, facts, formatDate, formatDuration, formatNumber, h, progressBar,
  replace, statusBadge, toast,
} from "../dom.js";
import { every } from "../live.js";
import { evaluationView } from "./evaluation.js";
import { ACTIVE } from "./jobs.js";
import { confirmDialog } from "./widgets.js";

// Status every 2 s; history and events only when the job has changed since they were read, which
// keeps a watched job well under the API's default rate limit (100 reads a minute per key).
const POLL_MS = 2000;
const TERMINAL = new Set(["completed", "failed", "cancelled"]);

/** #/jobs/<id> */
export async function jobPage(main, ctx, jobId) {
  const [job, canPause, canResume] = await Promise.all([
    api(`/api/jobs/${jobId}`),
    hasRoute("post", "/api/jobs/{job_id}/pause"),
    hasRoute("post", "/api/jobs/{job_id}/resume"),
  ]);
  const loss = stepChart({
    title: "Loss",
    yLabel: "loss",
    series: [
      { label: "train loss", key: "train_loss", color: "#4f46e5" },
      { label: "eval loss", key: "eval_loss", color: "#f59e0b", sparse: true },
    ],
  });
  const lr = stepChart({ title: "Learning rate", yLabel: "lr", series: [{ label: "learning rate", key: "learning_rate", color: "#10b981" }] });
  ctx.onLeave(() => { loss.destroy(); lr.destroy(); });

  const slots = {
    head: h("div", { class: "page-head" }),
    overview: h("div", { id: "job-overview" }),
    evaluation: h("div", { id: "job-evaluation" }, h("p", { class: "muted" }, "Loading…")),
    events: h("div", { id: "job-events", class: "events-scroll", tabindex: "0", "aria-label": "Events, newest first" }),
    config: h("div", { id: "job-config" }),
    error: h("div", {}),
  };
  main.append(slots.head, slots.error, slots.overview,
    card("Curves", h("div", { class: "two-col charts" }, loss.el, lr.el)),
    card("Evaluation: base vs fine-tuned", slots.evaluation),
    h("div", { class: "two-col" }, card("Events", slots.events), card("Configuration", slots.config)));

  const actions = { canPause, canResume, refresh: () => poll() };
  let last = job;
  let readAt = null; // the job's updated_at when history and events were last read
  let evaluationShown = false;
  const poll = async () => {
    try {
      const current = await api(`/api/jobs/${jobId}`);
      last = current;
      replace(slots.error);
      replace(slots.head, header(current, actions));
      replace(slots.overview, overview(current));
      if (current.updated_at !== readAt) {
        const [history, events] = await Promise.all([
          api(`/api/jobs/${jobId}/history`), api(`/api/jobs/${jobId}/events`),
        ]);
        readAt = current.updated_at;
        loss.update(history.points, TERMINAL.has(current.status));
        lr.update(history.points, TERMINAL.has(current.status));
        replace(slots.events, eventsTable(events.events));
        replace(slots.config, configFacts(current));
      }
      if (!evaluationShown || current.phase === "evaluating" || !TERMINAL.has(current.status)) {
        const report = TERMINAL.has(current.status) || current.phase === "evaluating"
          ? await apiOrNull(`/api/jobs/${jobId}/evaluation`) : null;
        replace(slots.evaluation, evaluationView(report, current));
        evaluationShown = TERMINAL.has(current.status);
      }
    } catch (err) {
      replace(slots.error, errorBox(err));
    }
    return !TERMINAL.has(last.status) || !evaluationShown;
  };
  ctx.onLeave(every(POLL_MS, poll));
}

function header(job, actions) {
  const buttons = [];
  if (ACTIVE.has(job.status) || job.status === "paused") {
    buttons.push(h("button", { type: "button", class: "danger", id: "cancel-job", onclick: () => cancel(job, actions) }, "Cancel"));
  }
  if (actions.canPause && job.status === "running") {
    buttons.push(h("button", { type: "button", id: "pause-job", onclick: () => post(job, "pause", actions) }, "Pause"));
  }
  if (actions.canResume && job.status === "paused") {
    buttons.push(h("button", { type: "button", class: "primary", id: "resume-job", onclick: () => post(job, "resume", actions) }, "Resume"));
  }
  if (job.status === "completed") {
    buttons.push(h("a", { class: "button primary", href: `#/playground?job=${job.job_id}` }, "Try it in the playground"));
    buttons.push(h("a", { class: "button", href: `#/exports?job=${job.job_id}` }, "Export"));
  }
  return [
    h("p", { class: "crumbs" }, h("a", { href: "#/jobs" }, "Jobs"), " / "),
    h("h1", { class: "mono" }, job.job_id, " ", statusBadge(job.status),
      job.phase ? h("span", { class: "badge phase", "data-phase": job.phase }, job.phase) : null),
    h("div", { class: "head-actions" }, buttons),
  ];
}

function overview(job) {
  const m = job.metrics || {};
  const steps = job.total_steps ? `step ${formatNumber(job.step)} / ${formatNumber(job.total_steps)}` : `step ${formatNumber(job.step)}`;
  return card(null,
    h("p", { class: "message", id: "job-message" }, job.message),
    h("div", { class: "big-progress" }, progressBar(job.progress, "Training progress"),
      h("span", { class: "muted", id: "job-steps" }, `epoch ${job.current_epoch} / ${job.total_epochs} · ${steps}`)),
    h("div", { class: "tiles" },
      tile("Train loss", formatNumber(m.train_loss), "train-loss"),
      tile("Eval loss", formatNumber(m.eval_loss), "eval-loss"),
      tile("Learning rate", formatNumber(m.learning_rate), "learning-rate"),
      tile("Tokens / s", formatNumber(m.tokens_per_second, 1), "tokens-per-second"),
      tile(ACTIVE.has(job.status) ? "Time left" : "Took", ACTIVE.has(job.status) ? (job.queue_position ? `#${job.queue_position} in queue` : eta(job.estimated_completion)) : took(job), "eta")),
    facts([
      ["Base model", job.model_name],
      ["Dataset", h("a", { href: `#/datasets/${job.dataset_id}`, class: "mono" }, job.dataset_id)],
      ["Estimate at start", formatDuration(job.estimated_seconds)],
      ["Created", formatDate(job.created_at)],
      ["Started", formatDate(job.started_at)],
      ["Finished", formatDate(job.completed_at)],
      ["Attempts", formatNumber(job.attempts)],
      ["Truncated examples", formatNumber(job.truncated_examples)],
      ...(job.error_code ? [["Error code", h("code", {}, job.error_code)]] : []),
    ]));
}

function took(job) {
  if (!job.started_at || !job.completed_at) return "—";
  return formatDuration((new Date(job.completed_at) - new Date(job.started_at)) / 1000);
}

function tile(label, value, id) {
  return h("div", { class: "tile", "data-tile": id }, h("span", { class: "tile-label" }, label), h("strong", {}, value));
}

function eventsTable(events) {
  const shown = events.slice(-50).reverse();
  return dataTable([
    { label: "Time", cell: (e) => new Date(e.timestamp).toLocaleTimeString() },
    { label: "Event", cell: (e) => h("span", { class: "badge" }, e.type) },
    { label: "Details", cell: (e) => h("span", { class: "small" }, summary(e.data)) },
  ], shown, { empty: "No event yet.", caption: events.length > 50 ? `Latest 50 of ${events.length}` : null });
}

function summary(data) {
  return Object.entries(data || {}).map(([k, v]) => `${k}: ${typeof v === "number" ? formatNumber(v) : typeof v === "object" ? JSON.stringify(v) : v}`).join(" · ");
}

function configFacts(job) {
  return facts(Object.entries(job.config || {}).map(([k, v]) => [h("code", {}, k), v === null ? "default" : typeof v === "object" ? JSON.stringify(v) : String(v)]));
}

async function cancel(job, actions) {
  const ok = await confirmDialog(`Cancel ${job.job_id}?`, "Training stops at the next step; the last checkpoint is kept.", "Cancel job");
  if (ok) await post(job, "cancel", actions);
}

async function post(job, verb, actions) {
  try {
    await api(`/api/jobs/${job.job_id}/${verb}`, { method: "POST" });
    toast(`${verb[0].toUpperCase()}${verb.slice(1)} requested for ${job.job_id}`, "success");
  } catch (err) {
    toast(errorText(err), "error");
  }
  actions.refresh();
}
