// Zoom and pan of a uPlot chart's x axis by buttons, keys and Shift+drag
// (uPlot itself zooms by dragging and resets on double-click), and the
// parts every interactive plot of the page shares: its focusable frame, its
// zoom buttons, and building the chart once it has a width.

import { h } from "./dom.js";

/** Move the x range: "in", "out", "left", "right" or "reset". */
export function navigate(u, action) {
  const xs = u.data[0];
  const first = xs[0];
  const last = xs[xs.length - 1];
  let min = u.scales.x.min;
  let max = u.scales.x.max;
  const width = max - min;
  const center = (min + max) / 2;
  if (action === "in") [min, max] = [center - width / 4, center + width / 4];
  if (action === "out") [min, max] = [center - width, center + width];
  if (action === "left") [min, max] = [min - width / 4, max - width / 4];
  if (action === "right") [min, max] = [min + width / 4, max + width / 4];
  if (action === "reset") [min, max] = [first, last];
  setRange(u, min, max);
}

/** Set the x range, kept inside the data and at least a few points wide. */
export function setRange(u, min, max) {
  const xs = u.data[0];
  const first = xs[0];
  const last = xs[xs.length - 1];
  const minWidth = 8 * Math.abs(xs[1] - xs[0] || 1e-6);
  let width = Math.min(Math.max(max - min, minWidth), last - first);
  if (min < first) [min, max] = [first, first + width];
  if (max > last) [min, max] = [last - width, last];
  width = max - min;
  u.setScale("x", { min, max: min + width });
}

const KEYS = {
  ArrowLeft: "left",
  ArrowRight: "right",
  "+": "in",
  "=": "in",
  "-": "out",
  _: "out",
  0: "reset",
  Home: "reset",
};

/**
 * Keyboard (arrows pan, + and − zoom, 0 resets) on ``element`` and Shift+drag
 * (or middle-button drag) panning on the plot; ``chart()`` gives the current
 * uPlot (charts are rebuilt when the axis changes).
 */
export function attachNavigation(element, chart) {
  element.addEventListener("keydown", (event) => {
    const action = KEYS[event.key];
    if (!action || event.ctrlKey || event.metaKey || event.altKey) return;
    event.preventDefault();
    navigate(chart(), action);
  });
  // Capture phase: runs before uPlot's own mousedown (which starts a zoom box).
  element.addEventListener(
    "mousedown",
    (event) => {
      const u = chart();
      if (!u || !(event.shiftKey || event.button === 1) || !u.over.contains(event.target)) return;
      event.preventDefault();
      event.stopPropagation();
      const startX = event.clientX;
      const { min, max } = u.scales.x;
      const perPixel = (max - min) / u.over.clientWidth;
      const move = (e) => {
        const shift = (startX - e.clientX) * perPixel;
        setRange(u, min + shift, max + shift);
      };
      const up = () => {
        window.removeEventListener("mousemove", move);
        window.removeEventListener("mouseup", up);
      };
      window.addEventListener("mousemove", move);
      window.addEventListener("mouseup", up);
    },
    true,
  );
}

/** Decimals that show steps of ``increment``. */
export const decimalsFor = (increment) =>
  Math.max(0, Math.min(6, -Math.floor(Math.log10(Math.abs(increment) || 1))));

/**
 * The focusable frame of an interactive chart around ``box`` (where uPlot
 * draws), named for screen readers and navigable by keys and Shift+drag.
 */
export function chartFrame(box, label, describedBy, chart) {
  const frame = h(
    "div",
    {
      class: "plot",
      tabindex: "0",
      role: "application",
      "aria-roledescription": "interactive chart",
      "aria-label": label,
      "aria-describedby": describedBy,
    },
    box,
  );
  attachNavigation(frame, chart);
  return frame;
}

/** The zoom and pan buttons of a chart; ``resetLabel`` names what Reset shows. */
export function zoomButtons(chart, resetLabel) {
  return h(
    "div",
    { class: "zoom-buttons", role: "group", "aria-label": "Zoom and pan" },
    [
      ["Pan left", "left", "◀"],
      ["Zoom in", "in", "+"],
      ["Zoom out", "out", "−"],
      ["Pan right", "right", "▶"],
      [resetLabel, "reset", "Reset"],
    ].map(([label, action, text]) =>
      h(
        "button",
        {
          type: "button",
          class: "icon",
          "aria-label": label,
          title: label,
          onclick: () => chart() && navigate(chart(), action),
        },
        text,
      ),
    ),
  );
}

/**
 * Calls ``build(width)`` once ``box`` has a width, then keeps the chart
 * (``chart()``, once built) as wide as the box.
 */
export function buildWhenSized(box, height, build, chart) {
  let lastWidth = 0;
  new ResizeObserver(() => {
    const width = Math.floor(box.clientWidth);
    if (width < 100 || width === lastWidth) return;
    lastWidth = width;
    const u = chart();
    if (u) u.setSize({ width, height });
    else build(width);
  }).observe(box);
}
