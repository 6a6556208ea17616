// Jobs: a live table (status, progress, ETA, model, dataset) with a status filter and paging.
import { api, openapi } from "../api.js";
import { card, dataTable, errorBox, eta, formatDate, h, progressBar, replace, statusBadge } from "../dom.js";
import { every } from "../live.js";
import { pager } from "./widgets.js";

const PAGE_SIZES = [10, 20, 50, 100];
const POLL_MS = 3000;
// A job's full record (for its ETA) is read again at most this often, to stay within rate limits.
const DETAIL_EVERY_MS = 10_000;
export const ACTIVE = new Set(["pending", "running", "queued", "launching", "evaluating"]);

/** #/jobs?status=&page= */
export async function jobsPage(main, ctx) {
  const doc = await openapi();
  const statuses = (doc.components.schemas.JobStatus || {}).enum || [];
  const status = ctx.query.get("status") || "";
  const page = Math.max(1, Number(ctx.query.get("page")) || 1);
  const size = Math.min(100, Math.max(1, Math.round(Number(ctx.query.get("size"))) || 20));
  const filter = h("select", { id: "status-filter", value: status },
    h("option", { value: "" }, "All statuses"), statuses.map((s) => h("option", { value: s }, s)));
  filter.addEventListener("change", () => ctx.navigate("/jobs", { status: filter.value, size }));
  const sizeSelect = h("select", { id: "page-size", value: String(size) }, [...new Set([...PAGE_SIZES, size])].sort((a, b) => a - b).map((n) => h("option", { value: String(n) }, String(n))));
  sizeSelect.addEventListener("change", () => ctx.navigate("/jobs", { status, size: sizeSelect.value }));
  const body = h("div", { id: "jobs-table", "aria-live": "off" });

  main.append(
    h("div", { class: "page-head" }, h("h1", {}, "Jobs"),
      h("div", { class: "head-actions" }, h("a", { href: "#/new", class: "button primary" }, "New job"))),
    card(null,
      h("div", { class: "toolbar" }, h("label", { for: "status-filter" }, "Status"), filter,
        h("label", { for: "page-size" }, "Per page"), sizeSelect,
        h("span", { class: "muted small", id: "jobs-updated" }, "")),
      body));

  const query = `limit=${size}&offset=${(page - 1) * size}${status ? `&status=${status}` : ""}`;
  const details = new Map();
  ctx.onLeave(every(POLL_MS, async () => {
    if (body.contains(document.activeElement) && document.activeElement !== body) return true; // keep keyboard focus
    try {
      const data = await api(`/api/jobs?${query}`);
      await readActiveDetails(data.jobs, details);
      replace(body, jobsTable(data.jobs, details), pager(data, page, size, (p) => ctx.navigate("/jobs", { status, size, page: p })));
      document.getElementById("jobs-updated").textContent = `Updated ${new Date().toLocaleTimeString()}`;
    } catch (err) {
      replace(body, errorBox(err));
    }
    return true;
  }));
}

// The list answers summaries; the ETA of a job still working is in its full record, read again
// when the job changed and the copy is older than DETAIL_EVERY_MS.
async function readActiveDetails(jobs, details) {
  const now = Date.now();
  const stale = jobs.filter((j) => ACTIVE.has(j.status) && j.estimated_completion === undefined).filter((j) => {
    const known = details.get(j.job_id);
    return !known || (known.record.updated_at !== j.updated_at && now - known.at > DETAIL_EVERY_MS);
  });
  const records = await Promise.all(stale.map((j) => api(`/api/jobs/${j.job_id}`).catch(() => null)));
  for (const record of records.filter(Boolean)) details.set(record.job_id, { record, at: now });
}

function jobsTable(jobs, details) {
  return dataTable([
    {
      label: "Job",
      cell: (j) => h("div", {}, h("a", { href: `#/jobs/${j.job_id}`, class: "mono" }, j.job_id),
        h("div", { class: "muted small clamp" }, j.message)),
    },
    { label: "Status", cell: (j) => h("div", {}, statusBadge(j.status), j.phase ? h("span", { class: "muted small block" }, j.phase) : null) },
    { label: "Progress", class: "progress-cell", cell: (j) => progressBar(j.progress, `Progress of ${j.job_id}`) },
    {
      label: "ETA",
      cell: (j) => {
        if (!ACTIVE.has(j.status)) return h("span", { class: "muted" }, "—");
        const rec = details.has(j.job_id) ? details.get(j.job_id).record : j;
        return j.queue_position ? `#${j.queue_position} in queue` : eta(rec.estimated_completion);
      },
    },
    { label: "Model", cell: (j) => j.model_name },
    { label: "Dataset", cell: (j) => h("a", { href: `#/datasets/${j.dataset_id}`, class: "mono small" }, j.dataset_id) },
    { label: "Created", cell: (j) => formatDate(j.created_at) },
  ], jobs, {
    empty: h("span", {}, "No job here. ", h("a", { href: "#/new" }, "Start one")),
    rowAttrs: (j) => ({ "data-job": j.job_id, "data-status": j.status }),
  });
}
