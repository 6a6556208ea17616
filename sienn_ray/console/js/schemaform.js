// Form fields generated from the API's JSON schemas (/openapi.json): type, defaults, bounds, enums
// and descriptions come from the server's pydantic models, so the form follows the API as it grows.
import { h, newId } from "./dom.js";

/** Follow a "$ref" into the document's components. */
export function deref(doc, schema) {
  let s = schema || {};
  while (s.$ref) s = doc.components.schemas[s.$ref.split("/").pop()];
  return s;
}

/** A property's schema with `anyOf: [X, null]` folded into X plus `nullable`. */
export function normalize(doc, schema) {
  const s = deref(doc, schema);
  if (Array.isArray(s.anyOf)) {
    const others = s.anyOf.filter((x) => x.type !== "null");
    if (others.length === 1) {
      const inner = deref(doc, others[0]);
      return { ...inner, ...withoutAnyOf(s), nullable: s.anyOf.length > others.length, inner };
    }
  }
  return s;
}

function withoutAnyOf(s) {
  const { anyOf, ...rest } = s;
  return rest;
}

/** [name, normalized schema] for every property of a component schema, in the server's order. */
export function properties(doc, componentName) {
  const schema = doc.components.schemas[componentName];
  return Object.entries(schema.properties || {}).map(([name, prop]) => [name, normalize(doc, prop)]);
}

const humanize = (name) => name.replace(/_/g, " ").replace(/^./, (c) => c.toUpperCase());

// Bounds as people read them: 9223372036854775807 (a seed's int64 limit) as 9.22e+18.
const bound = (n) => (n === undefined || Math.abs(n) < 1e9 ? n : n.toExponential(2));

function boundsText(s) {
  const parts = [];
  const low = bound(s.minimum ?? s.exclusiveMinimum);
  const high = bound(s.maximum ?? s.exclusiveMaximum);
  if (low !== undefined && high !== undefined) {
    parts.push(`${s.minimum !== undefined ? "≥" : ">"} ${low}, ${s.maximum !== undefined ? "≤" : "<"} ${high}`);
  } else if (low !== undefined) {
    parts.push(`${s.minimum !== undefined ? "≥" : ">"} ${low}`);
  } else if (high !== undefined) {
    parts.push(`${s.maximum !== undefined ? "≤" : "<"} ${high}`);
  }
  if (s.default !== undefined && s.default !== null && typeof s.default !== "object") parts.push(`default ${s.default}`);
  return parts.join(" · ");
}

function control(id, s, value, describedBy) {
  const common = { id, "aria-describedby": describedBy };
  if (Array.isArray(s.enum)) {
    const options = s.nullable ? [h("option", { value: "" }, "(server default)")] : [];
    return h("select", { ...common, value: value ?? "" }, options, s.enum.map((v) => h("option", { value: String(v) }, String(v))));
  }
  if (s.type === "boolean") return h("input", { ...common, type: "checkbox", checked: Boolean(value) });
  if (s.type === "integer" || s.type === "number") {
    return h("input", {
      ...common, type: "number", inputmode: s.type === "integer" ? "numeric" : "decimal",
      step: s.type === "integer" ? "1" : "any",
      min: s.minimum ?? s.exclusiveMinimum, max: s.maximum ?? s.exclusiveMaximum,
      value: value === null || value === undefined ? "" : String(value),
      placeholder: s.nullable ? "server default" : null,
    });
  }
  if (s.type === "array") {
    return h("input", { ...common, type: "text", value: (value || []).join(", "), placeholder: "comma-separated" });
  }
  if (s.maxLength !== undefined && s.maxLength > 200) return h("textarea", { ...common, rows: 3, value: value ?? "" });
  return h("input", { ...common, type: "text", value: value ?? "" });
}

function readControl(input, s) {
  if (s.type === "boolean") return input.checked;
  const raw = input.value.trim();
  if (raw === "") return undefined;
  if (s.type === "integer" || s.type === "number") {
    const n = Number(raw);
    return Number.isFinite(n) ? n : raw; // a non-number goes to the server, which names the problem
  }
  if (s.type === "array") return raw.split(",").map((x) => x.trim()).filter(Boolean);
  return raw;
}

const same = (a, b) => JSON.stringify(a) === JSON.stringify(b);

/**
 * One labelled field for a scalar, enum or list property. read() gives the value to send, or
 * undefined when it is the schema's default (so the server's default applies and is recorded).
 */
export function scalarField(name, s, { label, value = s.default } = {}) {
  const id = newId(`f-${name}`);
  const hintId = `${id}-hint`;
  const errorId = `${id}-error`;
  const input = control(id, s, value, `${hintId} ${errorId}`);
  input.name = name;
  const error = h("p", { class: "field-error", id: errorId, hidden: true });
  const hint = h("p", { class: "hint", id: hintId },
    s.description ? `${s.description.replace(/\.$/, "")}. ` : "", h("span", { class: "bounds" }, boundsText(s)));
  const isCheck = s.type === "boolean";
  const labelEl = h("label", { for: id }, label || humanize(name), " ", h("code", { class: "field-name" }, name));
  const el = h("div", { class: `field${isCheck ? " check" : ""}`, "data-field": name },
    isCheck ? [input, labelEl] : [labelEl, input], hint, error);
  return {
    name, el, input,
    read() {
      const v = readControl(input, s);
      return v === undefined || same(v, s.default) ? undefined : v;
    },
    setError(message) {
      error.hidden = !message;
      error.textContent = message || "";
      if (message) input.setAttribute("aria-invalid", "true");
      else input.removeAttribute("aria-invalid");
    },
  };
}

/**
 * A nullable nested object (e.g. deepspeed): a checkbox turns it on, then its own fields show.
 * read() gives the object (only its non-default fields), or undefined while it is off.
 */
export function objectField(doc, name, s, { label } = {}) {
  const id = newId(`f-${name}`);
  const inner = s.inner || s;
  const children = Object.entries(inner.properties || {}).map(([k, p]) => scalarField(k, normalize(doc, p)));
  const toggle = h("input", { id, type: "checkbox", checked: s.default !== null && s.default !== undefined });
  const body = h("div", { class: "grid" }, children.map((c) => c.el));
  const sync = () => { body.hidden = !toggle.checked; };
  toggle.addEventListener("change", sync);
  sync();
  const error = h("p", { class: "field-error", hidden: true });
  const el = h("fieldset", { class: "field nested", "data-field": name },
    h("legend", {}, h("span", { class: "check" }, toggle,
      h("label", { for: id }, label || humanize(name), " ", h("code", { class: "field-name" }, name)))),
    s.description || inner.description ? h("p", { class: "hint" }, s.description || inner.description) : null,
    body, error);
  return {
    name, el, input: toggle, children,
    read() {
      if (!toggle.checked) return undefined;
      const out = {};
      for (const c of children) {
        const v = c.read();
        if (v !== undefined) out[c.name] = v;
      }
      return out;
    },
    setError(message) {
      error.hidden = !message;
      error.textContent = message || "";
    },
  };
}

/** A field of either kind for one property. */
export function fieldFor(doc, name, s, options) {
  return s.type === "object" || (s.inner && s.inner.type === "object")
    ? objectField(doc, name, s, options)
    : scalarField(name, s, options);
}

/**
 * Mark number fields holding text that is not a number (the browser reports those as empty, so
 * they would silently fall back to the default). Returns how many were marked.
 */
export function markUnreadable(fields) {
  let bad = 0;
  for (const f of fields.flatMap((x) => [x, ...(x.children || [])])) {
    if (f.input.validity && f.input.validity.badInput) {
      f.setError("Enter a number.");
      bad += 1;
    }
  }
  return bad;
}

/** The values to send from a list of fields ({name: value} without defaults). */
export function readFields(fields) {
  const out = {};
  for (const f of fields) {
    const v = f.read();
    if (v !== undefined) out[f.name] = v;
  }
  return out;
}

/**
 * Put each problem of a 400 next to its field: "body.config.lora_r: ..." by its path, else the
 * first field whose name the message mentions. Returns the problems that fit no field.
 */
export function placeErrors(fieldsByName, problems, prefixes = ["body.config.", "body.", "config."]) {
  for (const f of Object.values(fieldsByName)) f.setError(null);
  const shown = new Map();
  const rest = [];
  for (const problem of problems) {
    const target = fieldFromPath(fieldsByName, problem, prefixes) || fieldMentioned(fieldsByName, problem);
    if (!target) {
      rest.push(problem);
      continue;
    }
    shown.set(target, [...(shown.get(target) || []), problem.replace(/^body\.(config\.)?/, "")]);
  }
  for (const [f, messages] of shown) f.setError(messages.join("; "));
  return rest;
}

function fieldFromPath(fieldsByName, problem, prefixes) {
  const where = problem.split(":")[0].trim();
  for (const prefix of prefixes) {
    if (!where.startsWith(prefix)) continue;
    const name = where.slice(prefix.length).split(".")[0];
    if (fieldsByName[name]) return fieldsByName[name];
  }
  return null;
}

function fieldMentioned(fieldsByName, problem) {
  const names = Object.keys(fieldsByName).sort((a, b) => b.length - a.length);
  const hit = names.find((n) => new RegExp(`(^|[^a-z_])${n}([^a-z_]|$)`).test(problem));
  return hit ? fieldsByName[hit] : null;
}
