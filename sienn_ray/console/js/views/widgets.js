// Small pieces several screens share: a confirm dialog, a pager, a job picker.
import { api } from "../api.js";
import { h } from "../dom.js";

/** A modal yes/no question; resolves true when confirmed. */
export function confirmDialog(title, text, confirmLabel = "OK") {
  return new Promise((resolve) => {
    const dialog = h("dialog", { class: "confirm", "aria-label": title },
      h("form", {},
        h("h2", {}, title), text ? h("p", {}, text) : null,
        h("div", { class: "actions" },
          h("button", { type: "button", class: "secondary", onclick: () => dialog.close("no") }, "Cancel"),
          h("button", { type: "submit", class: "danger" }, confirmLabel))));
    dialog.querySelector("form").addEventListener("submit", (e) => {
      e.preventDefault();
      dialog.close("yes");
    });
    dialog.addEventListener("close", () => {
      dialog.remove();
      resolve(dialog.returnValue === "yes");
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}

/** "21–40 of 57" with previous/next buttons; `go(page)` changes the page. */
export function pager({ total }, page, size, go) {
  const pages = Math.max(1, Math.ceil(total / size));
  if (total <= size && page === 1) return null;
  const first = Math.min(total, (page - 1) * size + 1);
  const last = Math.min(total, page * size);
  return h("nav", { class: "pager", "aria-label": "Pages" },
    h("button", { type: "button", class: "small", disabled: page <= 1, onclick: () => go(page - 1) }, "← Previous"),
    h("span", { class: "muted" }, `${first}–${last} of ${total}`),
    h("button", { type: "button", class: "small", disabled: page >= pages, onclick: () => go(page + 1) }, "Next →"));
}

/** A <select> of completed jobs (newest first); the value is a job id. */
export async function completedJobSelect(id, selected) {
  const data = await api("/api/jobs?status=completed&limit=200");
  const select = h("select", { id },
    data.jobs.length ? null : h("option", { value: "" }, "No completed job yet"),
    data.jobs.map((j) => h("option", { value: j.job_id }, `${j.job_id} · ${j.model_name}`)));
  if (selected && data.jobs.some((j) => j.job_id === selected)) select.value = selected;
  return { select, jobs: data.jobs };
}
