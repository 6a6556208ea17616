// The one door to the HTTP API: JSON requests, uploads with progress, server-sent events,
// and the API key (asked for on any 401, kept in sessionStorage for this tab only).
import { EventSourceParserStream } from "../vendor/eventsource-parser/stream.js";

const KEY_STORAGE = "sienn.apiKey";

/** An answer in the API's error format: {detail, error_code, timestamp, errors?}. */
export class ApiError extends Error {
  constructor(status, body) {
    const detail = (body && body.detail) || `HTTP ${status}`;
    super(detail);
    this.status = status;
    this.detail = detail;
    this.code = body && body.error_code;
    this.errors = (body && body.errors) || [];
    this.body = body;
  }
}

export function apiKey() {
  return sessionStorage.getItem(KEY_STORAGE);
}

export function forgetKey() {
  sessionStorage.removeItem(KEY_STORAGE);
}

let promptForKey = async () => null;
/** auth.js installs the dialog that asks for a key: async (message) -> key | null. */
export function setKeyPrompt(fn) {
  promptForKey = fn;
}

let pendingPrompt = null;
// Several requests may be refused at once: they all wait for the same answer.
function askForKey(message) {
  if (!pendingPrompt) {
    pendingPrompt = promptForKey(message).then((key) => {
      if (key) sessionStorage.setItem(KEY_STORAGE, key);
      return key;
    }).finally(() => { pendingPrompt = null; });
  }
  return pendingPrompt;
}

function headers(extra = {}) {
  const out = { Accept: "application/json", ...extra };
  const key = apiKey();
  if (key) out.Authorization = `Bearer ${key}`;
  return out;
}

async function readBody(res) {
  const text = await res.text();
  try {
    return JSON.parse(text);
  } catch {
    return { detail: text || `HTTP ${res.status} ${res.statusText}` };
  }
}

// Send, and on 401 ask for a key and send again until one is accepted or the person gives up.
async function authorized(send) {
  for (;;) {
    const sentWith = apiKey();
    const res = await send();
    if (res.status !== 401) return res;
    const body = await readBody(res);
    if (apiKey() !== sentWith) continue; // another request got a new key meanwhile
    const refused = sentWith ? `The key was refused: ${body.detail || "unauthorized"}` : body.detail;
    if (sentWith) forgetKey();
    const key = await askForKey(refused || "This API needs a key.");
    if (!key) throw new ApiError(401, body);
  }
}

const RATE_LIMIT_RETRIES = 3;
const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });

/**
 * A JSON request; resolves to the parsed answer, rejects with ApiError. A read refused with 429
 * (rate limit) is sent again after the server's Retry-After, a few times, so live views recover.
 */
export async function api(path, { method = "GET", json, signal } = {}) {
  for (let attempt = 0; ; attempt += 1) {
    const res = await authorized(() => fetch(path, {
      method,
      signal,
      headers: headers(json === undefined ? {} : { "Content-Type": "application/json" }),
      body: json === undefined ? undefined : JSON.stringify(json),
    }));
    const body = await readBody(res);
    if (res.ok) return body;
    if (res.status === 429 && method === "GET" && attempt < RATE_LIMIT_RETRIES) {
      await sleep(1000 * Math.min(30, Number(res.headers.get("Retry-After")) || 2));
      continue;
    }
    throw new ApiError(res.status, body);
  }
}

/** Like api(), but a 404 resolves to null (e.g. "no evaluation yet"). */
export async function apiOrNull(path, options) {
  try {
    return await api(path, options);
  } catch (err) {
    if (err instanceof ApiError && err.status === 404) return null;
    throw err;
  }
}

let openapiCache = null;
/** The API's OpenAPI document (forms are generated from its schemas). */
export function openapi() {
  if (!openapiCache) openapiCache = api("/openapi.json").catch((err) => { openapiCache = null; throw err; });
  return openapiCache;
}

/** Whether the API offers `method path` (e.g. pause/resume, which newer servers add). */
export async function hasRoute(method, path) {
  const doc = await openapi();
  return Boolean(doc.paths && doc.paths[path] && doc.paths[path][method.toLowerCase()]);
}

function xhrUpload(path, form, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", path);
    for (const [k, v] of Object.entries(headers())) xhr.setRequestHeader(k, v);
    xhr.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) onProgress(e.loaded, e.total);
    });
    xhr.addEventListener("load", () => resolve({ status: xhr.status, text: xhr.responseText }));
    xhr.addEventListener("error", () => reject(new ApiError(0, { detail: "The upload was interrupted" })));
    xhr.addEventListener("abort", () => reject(new ApiError(0, { detail: "The upload was cancelled" })));
    xhr.send(form);
  });
}

/** POST a multipart form with upload progress (XMLHttpRequest: fetch cannot report it). */
export async function upload(path, form, onProgress = () => {}) {
  const res = await authorized(async () => {
    const r = await xhrUpload(path, form, onProgress);
    return { status: r.status, ok: r.status >= 200 && r.status < 300, text: async () => r.text };
  });
  const body = await readBody(res);
  if (!res.ok) throw new ApiError(res.status, body);
  return body;
}

/** POST JSON and read the answer as server-sent events: onEvent(name, data) for each. */
export async function streamEvents(path, json, onEvent, signal) {
  const res = await authorized(() => fetch(path, {
    method: "POST",
    signal,
    headers: headers({ "Content-Type": "application/json", Accept: "text/event-stream" }),
    body: JSON.stringify(json),
  }));
  if (!res.ok) throw new ApiError(res.status, await readBody(res));
  const events = res.body.pipeThrough(new TextDecoderStream()).pipeThrough(new EventSourceParserStream());
  const reader = events.getReader();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) return;
    onEvent(value.event || "message", JSON.parse(value.data));
  }
}

/**
 * Save a download. Without a key a plain link lets the browser stream the file to disk; with a
 * key the request must carry the Authorization header, which a link cannot, so it is fetched.
 */
export async function download(url, filename) {
  let href = url;
  if (apiKey()) {
    const res = await authorized(() => fetch(url, { headers: headers({ Accept: "*/*" }) }));
    if (!res.ok) throw new ApiError(res.status, await readBody(res));
    href = URL.createObjectURL(await res.blob());
  }
  const link = document.createElement("a");
  link.href = href;
  link.download = filename || "";
  document.body.append(link);
  link.click();
  link.remove();
  if (href !== url) setTimeout(() => URL.revokeObjectURL(href), 60_000);
}
