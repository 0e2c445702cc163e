// A tiny element builder. Text always goes in as text (never as HTML), and
// no inline styles or handlers are written, so the page runs under a strict
// Content-Security-Policy.

/**
 * h("button", {class: "primary", onclick: f, "aria-label": "…"}, "text", child)
 * Attributes: class, text, dataset, on<event>, anything else as an attribute
 * (true → present, false/null → absent).
 */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "text") el.textContent = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on")) el.addEventListener(key.slice(2), value);
    else el.setAttribute(key, value === true ? "" : String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : String(child));
  }
}

/** Replace an element's children. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

export const $ = (selector, root = document) => root.querySelector(selector);
export const $$ = (selector, root = document) => [...root.querySelectorAll(selector)];

let uid = 0;
/** A page-unique id for label/aria wiring. */
export const newId = (prefix) => `${prefix}-${++uid}`;

/** Format a number with a fixed count of decimals; "—" for null. */
export function fmt(value, digits = 2) {
  if (value === null || value === undefined || Number.isNaN(value)) return "—";
  const text = Number(value).toFixed(digits);
  return /^-0\.?0*$/.test(text) ? text.slice(1) : text; // no "-0.000"
}

/** Save text as a file the browser downloads. */
export function download(filename, text, type) {
  const url = URL.createObjectURL(new Blob([text], { type }));
  const link = h("a", { href: url, download: filename, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

/** Miller indices with negative values as overbars: [2,-1,0] → "2 1̄ 0". */
export function hklText(hkl) {
  return hkl.map((v) => (v < 0 ? `${-v}\u0305` : String(v))).join(" ");
}

/** The file name without its extension. */
export const stem = (name) => String(name || "").replace(/\.[^.]+$/, "");

/** A small bar for a fraction 0–1 with its percent as text; ``label`` names it for screen readers. */
export function meter(value, label) {
  const percent = Math.round(100 * value);
  const fill = h("span", { class: "meter-fill" });
  fill.style.width = `${percent}%`;
  return h(
    "span",
    { class: "meter", role: "img", "aria-label": `${label} ${percent} %` },
    h("span", { class: "meter-track" }, fill),
    `${percent} %`,
  );
}
