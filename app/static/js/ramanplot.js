// The interactive overlay of a Raman identification (include=profiles): the
// measured spectrum, preprocessed, against the candidates' reference spectra,
// preprocessed alike, over Raman shift; candidates on and off, zoom and pan.

/* global uPlot */
import { fmt, h, newId } from "./dom.js";
import { buildWhenSized, chartFrame, decimalsFor, zoomButtons } from "./navigate.js";
import { phaseColor } from "./overlay.js";

const SPECTRUM_COLOR = "#1d1d1f";
const HEIGHT = 360; // CSS px, axes included

/**
 * The overlay's element. ``profiles`` is a Raman response's `profiles`;
 * ``candidates`` its candidates (a reference's colour is its candidate's).
 * The best candidate is shown at first, the others are a click away.
 */
export function ramanOverlayView(profiles, candidates) {
  const xs = profiles.shift_cm1;
  const spectrum = profiles.spectrum;
  const rank = new Map(candidates.map((c, i) => [c.reference_id, i]));
  const references = profiles.references.map((r, i) => {
    const index = rank.has(r.reference_id) ? rank.get(r.reference_id) : i;
    return { ...r, color: phaseColor(index) };
  });
  const state = { spectrum: true, references: references.map((_, i) => i === 0) };
  let u = null;

  const captionId = newId("raman-caption");
  const helpId = newId("raman-help");
  const plotBox = h("div", { class: "plot-box" });
  const readout = h("p", { class: "readout" }, "Point at the plot to read the spectra.");
  const caption = h("p", { id: captionId, class: "plot-caption", "aria-live": "polite" });
  const plot = chartFrame(
    plotBox,
    "Overlay of the measured spectrum and the candidates' reference spectra",
    `${captionId} ${helpId}`,
    () => u,
  );

  const shown = () => [
    state.spectrum ? spectrum : null,
    ...references.map((r, i) => (state.references[i] ? r.profile : null)),
  ];

  // y: from 0 (or below, for a negative dip) to the highest shown point in view.
  function yRange(chart) {
    const [lo, hi] = chart.series[0].idxs || [0, xs.length - 1];
    let min = 0;
    let max = -Infinity;
    for (const values of shown()) {
      if (!values) continue;
      for (let i = lo; i <= hi; i++) {
        const v = values[i];
        if (v > max) max = v;
        if (v < min) min = v;
      }
    }
    if (!(max > min)) max = min + 1;
    return [min, max + 0.05 * (max - min)];
  }

  function onCursor(chart) {
    const idx = chart.cursor.idx;
    if (idx === null || idx === undefined || chart.cursor.left < 0) return;
    const parts = [`Raman shift ${xs[idx].toFixed(0)} cm⁻¹`];
    if (state.spectrum) parts.push(`spectrum ${fmt(spectrum[idx], 3)}`);
    references.forEach((r, i) => {
      if (state.references[i]) parts.push(`${r.name} ${fmt(r.profile[idx], 3)}`);
    });
    readout.textContent = parts.join(" · ");
  }

  function describeRange(chart) {
    const { min, max } = chart.scales.x;
    if (min === null || max === null) return;
    const whole = min <= xs[0] + 1e-9 && max >= xs[xs.length - 1] - 1e-9;
    caption.textContent = `Showing ${min.toFixed(0)}–${max.toFixed(0)} cm⁻¹${whole ? " (the whole spectrum)" : ""}.`;
    caption.dataset.min = String(min);
    caption.dataset.max = String(max);
  }

  function build(width) {
    u = new uPlot(
      {
        width,
        height: HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: true, y: false }, points: { show: false }, y: false },
        scales: { x: { time: false }, y: { range: yRange } },
        axes: [
          {
            label: "Raman shift (cm⁻¹)",
            labelSize: 22,
            space: 56,
            grid: { stroke: "#e6e6e6", width: 1 },
            values: (_c, splits, _i, _s, increment) => splits.map((v) => v.toFixed(decimalsFor(increment))),
          },
          {
            label: "Intensity (maximum = 1)",
            labelSize: 22,
            size: 48,
            grid: { stroke: "#eeeeee", width: 1 },
            values: (_c, splits, _i, _s, increment) => splits.map((v) => v.toFixed(decimalsFor(increment))),
          },
        ],
        // The references first: the measured spectrum is drawn over them.
        series: [
          {},
          ...references.map((r, i) => ({ label: r.name, stroke: r.color, width: 1.8, show: state.references[i] })),
          { label: "Measured spectrum", stroke: SPECTRUM_COLOR, width: 1.1, show: state.spectrum },
        ],
        hooks: {
          setCursor: [onCursor],
          setScale: [(chart, key) => key === "x" && describeRange(chart)],
        },
      },
      [xs, ...references.map((r) => r.profile), spectrum],
      plotBox,
    );
  }

  const refresh = () => u && u.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
  const toggle = (label, checked, color, onChange, extra = {}) => {
    const swatch = h("span", { class: "swatch", "aria-hidden": "true" });
    swatch.style.background = color;
    return h(
      "label",
      { class: "toggle", ...extra },
      h("input", { type: "checkbox", checked, onchange: (e) => onChange(e.target.checked) }),
      swatch,
      label,
    );
  };
  const toggles = h(
    "fieldset",
    { class: "series-toggles" },
    h("legend", {}, "Show"),
    toggle("Measured spectrum", true, SPECTRUM_COLOR, (on) => {
      state.spectrum = on;
      u?.setSeries(references.length + 1, { show: on });
      refresh();
    }),
    references.map((r, i) =>
      toggle(
        r.name,
        state.references[i],
        r.color,
        (on) => {
          state.references[i] = on;
          u?.setSeries(i + 1, { show: on });
          refresh();
        },
        { dataset: { referenceId: String(r.reference_id) } },
      ),
    ),
  );
  const zoom = zoomButtons(() => u, "Show the whole spectrum");
  const help = h(
    "p",
    { id: helpId, class: "hint" },
    "Both spectra are preprocessed alike (spikes and fluorescence background removed, maximum 1). " +
      "Tick a mineral to draw its reference spectrum. Drag across the plot to zoom, Shift+drag to pan, " +
      "double-click to see it all; with the plot focused: ← → pan, + − zoom, 0 resets.",
  );
  const view = h(
    "div",
    { class: "overlay raman-overlay" },
    h("div", { class: "overlay-controls" }, toggles, zoom),
    plot,
    h("div", { class: "plot-foot" }, caption, readout),
    help,
  );
  buildWhenSized(plotBox, HEIGHT, build, () => u);
  return view;
}
