// Zoom and pan of a uPlot chart's x axis by buttons, keys and Shift+drag
// (uPlot itself zooms by dragging and resets on double-click).

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
