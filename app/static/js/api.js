// Calls to the xrdid API, with its problem+json errors turned into sentences.
// Paths are relative, so the page also works behind a reverse proxy prefix.

import { h } from "./dom.js";

/** An error answer of the API (or no answer): status, title, detail. */
export class ApiError extends Error {
  constructor(status, title, detail, problem = null) {
    super(detail ? `${title}: ${detail}` : title);
    this.status = status;
    this.title = title;
    this.detail = detail;
    this.problem = problem;
  }
}

/** "the file is empty" → "The file is empty." */
export function sentence(text) {
  const s = String(text || "").trim();
  if (!s) return "";
  // Capitalise a plain first word, never a file or field name ("bad.xy: …", "top_k: …").
  const word = s.split(/[\s:]/)[0];
  const first = /^[a-z][a-z'’-]*$/.test(word) ? s[0].toUpperCase() + s.slice(1) : s;
  return /[.!?…]$/.test(first) ? first : `${first}.`;
}

// What a person can do about each status, beyond the server's words.
const HINTS = {
  401: "Enter the API key your operator gave you.",
  403: "Check the key: it must be one of the server's write keys (XRDID_WRITE_API_KEYS).",
  413: "Send a smaller file, or ask the operator to raise XRDID_MAX_UPLOAD_BYTES.",
  503: "The service is still starting; wait a moment and try again.",
};

/**
 * fetch() a path of the API; resolves to the parsed JSON (null for 204) and
 * rejects with an ApiError whose title and detail are sentences.
 */
export async function call(path, { method = "GET", body = null, key = "" } = {}) {
  const headers = { Accept: "application/json" };
  if (key) headers["X-API-Key"] = key;
  let response;
  try {
    response = await fetch(path, { method, body, headers });
  } catch {
    throw new ApiError(
      0,
      "The server could not be reached",
      "check that the xrdid service is running and the network is up, then try again",
    );
  }
  if (response.ok) return response.status === 204 ? null : response.json();
  let problem = null;
  if ((response.headers.get("content-type") || "").includes("json")) {
    try {
      problem = await response.json();
    } catch {
      problem = null;
    }
  }
  const title = problem?.title || `The server answered ${response.status} ${response.statusText}`;
  throw new ApiError(response.status, title, problem?.detail || "", problem);
}

/** An alert that says what went wrong in sentences (never raw JSON). */
export function problemView(error) {
  const err =
    error instanceof ApiError
      ? error
      : new ApiError(0, "Something went wrong", String(error?.message || error));
  const fieldErrors = err.problem?.errors;
  const details =
    Array.isArray(fieldErrors) && fieldErrors.length > 1
      ? h(
          "ul",
          {},
          fieldErrors.map((e) => h("li", {}, h("code", {}, e.field), ": ", sentence(e.message))),
        )
      : err.detail
        ? h("p", {}, sentence(err.detail))
        : null;
  const hint = HINTS[err.status];
  return h(
    "div",
    { class: "problem", role: "alert" },
    h("p", { class: "problem-title" }, sentence(err.title)),
    details,
    hint ? h("p", { class: "hint" }, hint) : null,
  );
}

/** One line for a list: "Title. Detail." */
export function problemText(error) {
  if (!(error instanceof ApiError)) return sentence(String(error?.message || error));
  return [sentence(error.title), sentence(error.detail)].filter(Boolean).join(" ");
}
