// The console's shell: hash routes (so a reload or a shared link reopens the same live view),
// the top bar's health light, and the API key dialog.
import { api } from "./api.js";
import { installKeyPrompt } from "./auth.js";
import { errorBox, h, replace } from "./dom.js";
import { every } from "./live.js";
import { datasetPage, datasetsPage } from "./views/datasets.js";
import { exportsPage } from "./views/exports.js";
import { jobPage } from "./views/job.js";
import { jobsPage } from "./views/jobs.js";
import { newJobPage } from "./views/newjob.js";
import { playgroundPage } from "./views/playground.js";

// [pattern on the path part of the hash, view, nav entry, title]
const ROUTES = [
  [/^\/datasets$/, datasetsPage, "datasets", "Datasets"],
  [/^\/datasets\/([\w-]+)$/, datasetPage, "datasets", "Dataset"],
  [/^\/new$/, newJobPage, "new", "New job"],
  [/^\/jobs$/, jobsPage, "jobs", "Jobs"],
  [/^\/jobs\/([\w-]+)$/, jobPage, "jobs", "Job"],
  [/^\/playground$/, playgroundPage, "playground", "Playground"],
  [/^\/exports$/, exportsPage, "exports", "Exports"],
];

const main = document.getElementById("main");
let leaving = [];

/** Parse "#/jobs/job_1?status=running" into {path, query}. */
export function currentRoute() {
  const raw = location.hash.replace(/^#/, "") || "/jobs";
  const [path, search = ""] = raw.split("?");
  return { path, query: new URLSearchParams(search) };
}

/** Go to `path` with `query` (an object; empty values are dropped). */
export function navigate(path, query = {}) {
  const params = new URLSearchParams();
  for (const [k, v] of Object.entries(query)) if (v !== undefined && v !== null && v !== "") params.set(k, v);
  const search = params.toString();
  location.hash = `#${path}${search ? `?${search}` : ""}`;
}

async function render(focus) {
  for (const stop of leaving) stop();
  leaving = [];
  const { path, query } = currentRoute();
  const match = ROUTES.map(([re, view, nav, title]) => [path.match(re), view, nav, title]).find(([m]) => m);
  for (const link of document.querySelectorAll("[data-nav]")) {
    if (match && link.dataset.nav === match[2]) link.setAttribute("aria-current", "page");
    else link.removeAttribute("aria-current");
  }
  if (!match) {
    replace(main, h("h1", {}, "Not found"), h("p", {}, "No such page. ", h("a", { href: "#/jobs" }, "See the jobs")));
    return;
  }
  const [m, view, , title] = match;
  document.title = `${title} · sienn-ray`;
  replace(main);
  const ctx = { onLeave: (fn) => leaving.push(fn), navigate, query };
  try {
    await view(main, ctx, ...m.slice(1));
  } catch (err) {
    main.append(errorBox(err));
  }
  if (focus) main.focus({ preventScroll: false });
}

function watchHealth() {
  const light = document.getElementById("health");
  every(10_000, async () => {
    try {
      const health = await fetch("/health").then((r) => r.json());
      light.className = `health ${health.status === "healthy" ? "ok" : "bad"}`;
      light.textContent = health.status === "healthy" ? "API healthy" : `API ${health.status}`;
    } catch {
      light.className = "health bad";
      light.textContent = "API unreachable";
    }
  });
}

installKeyPrompt();
watchHealth();
window.addEventListener("hashchange", () => render(true));
if (!location.hash) history.replaceState(null, "", "#/jobs");
render(false);
