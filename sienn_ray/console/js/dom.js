// Building DOM nodes and formatting values. Nodes are made with createElement and text nodes only
// (never innerHTML), so text from the API can never become markup.

/** h("a", {href, class, onclick}, ...children): an element; children are nodes, strings or arrays. */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [name, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false || name === "value") continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "class") {
      el.className = value;
    } else if (name === "style") {
      Object.assign(el.style, value); // CSSOM, which the Content-Security-Policy allows
    } else if (name in el && typeof value !== "string") {
      el[name] = value; // properties such as value, checked, disabled, max
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  append(el, children);
  // After the children, so a <select> has its options and a <textarea> keeps its text.
  if (attrs && attrs.value !== undefined && attrs.value !== null) el.value = attrs.value;
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace every child of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

let uid = 0;
/** A unique element id with a readable prefix (labels point at inputs by id). */
export function newId(prefix) {
  uid += 1;
  return `${prefix}-${uid}`;
}

export function formatBytes(n) {
  if (n === null || n === undefined) return "—";
  const units = ["B", "KB", "MB", "GB", "TB"];
  let i = 0;
  let value = n;
  while (value >= 1024 && i < units.length - 1) {
    value /= 1024;
    i += 1;
  }
  return `${i === 0 ? value : value.toFixed(value < 10 ? 1 : 0)} ${units[i]}`;
}

/** "1 sample", "3 samples". */
export function plural(n, word) {
  return `${formatNumber(n)} ${word}${n === 1 ? "" : "s"}`;
}

export function formatNumber(x, digits = 4) {
  if (x === null || x === undefined || Number.isNaN(x)) return "—";
  if (typeof x !== "number") return String(x);
  if (Number.isInteger(x)) return x.toLocaleString("en-US");
  const abs = Math.abs(x);
  if (abs !== 0 && (abs < 1e-3 || abs >= 1e6)) return x.toExponential(2);
  return x.toFixed(digits).replace(/0+$/, "").replace(/\.$/, "");
}

const dateFormat = new Intl.DateTimeFormat(undefined, { dateStyle: "medium", timeStyle: "medium" });
export function formatDate(iso) {
  if (!iso) return "—";
  return dateFormat.format(new Date(iso));
}

/** 75 -> "1 min 15 s"; durations of a job, an estimate, an ETA. */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || !Number.isFinite(seconds)) return "—";
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min ${s % 60} s`;
  return `${Math.floor(m / 60)} h ${m % 60} min`;
}

/** Time left until an ISO timestamp ("2 min 5 s"), or "—" when past or unknown. */
export function eta(iso) {
  if (!iso) return "—";
  const left = (new Date(iso).getTime() - Date.now()) / 1000;
  return left > 0 ? formatDuration(left) : "any moment";
}

export function statusBadge(status) {
  return h("span", { class: `badge status-${status}`, "data-status": status }, status);
}

/** A labelled progress bar; `value` in percent. */
export function progressBar(value, label) {
  const pct = Math.max(0, Math.min(100, Number(value) || 0));
  return h("div", { class: "progress" },
    h("progress", { max: 100, value: pct, "aria-label": label || "Progress" }),
    h("span", { class: "progress-text" }, `${pct.toFixed(pct < 10 && pct > 0 ? 1 : 0)}%`));
}

/** A table: columns [{label, cell(row) -> node|string, class}], rows; wrapped to scroll on narrow screens. */
export function dataTable(columns, rows, { caption, empty = "Nothing here yet.", rowAttrs } = {}) {
  const head = h("tr", {}, columns.map((c) => h("th", { scope: "col", class: c.class }, c.label)));
  const body = rows.length
    ? rows.map((row) => h("tr", rowAttrs ? rowAttrs(row) : {},
      columns.map((c) => h("td", { class: c.class, "data-label": c.label }, c.cell(row)))))
    : [h("tr", {}, h("td", { colspan: columns.length, class: "empty" }, empty))];
  return h("div", { class: "table-wrap" },
    h("table", {}, caption ? h("caption", {}, caption) : null, h("thead", {}, head), h("tbody", {}, body)));
}

/** A definition list from [label, value] pairs. */
export function facts(pairs) {
  return h("dl", { class: "facts" }, pairs.map(([k, v]) => h("div", {}, h("dt", {}, k), h("dd", {}, v))));
}

export function card(title, ...children) {
  return h("section", { class: "card", "aria-label": typeof title === "string" ? title : null },
    title ? h("h2", {}, title) : null, children);
}

/** The text of an error for a person: the API's detail, or the exception's message. */
export function errorText(err) {
  return err && err.detail ? err.detail : String((err && err.message) || err);
}

export function errorBox(err) {
  const items = err && Array.isArray(err.errors) && err.errors.length > 1 ? err.errors : [];
  return h("div", { class: "alert error", role: "alert" },
    h("strong", {}, errorText(err)),
    items.length ? h("ul", {}, items.map((e) => h("li", {}, e))) : null);
}

const toastArea = () => document.getElementById("toasts");
/** A short message at the bottom of the screen (announced to screen readers). */
export function toast(message, kind = "info") {
  const el = h("div", { class: `toast ${kind}`, role: kind === "error" ? "alert" : "status" }, message);
  toastArea().append(el);
  setTimeout(() => el.remove(), 6000);
}
