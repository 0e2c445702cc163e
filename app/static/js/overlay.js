// The interactive overlay of an identification (include=profiles): the scan,
// the fit, each phase's fitted profile, the residual, and each phase's
// reflection ticks (hkl on hover); zoom, pan, phases on and off, x in 2θ or d.

/* global uPlot */
import { h, fmt, hklText, newId } from "./dom.js";
import { buildWhenSized, chartFrame, decimalsFor, zoomButtons } from "./navigate.js";

// Okabe–Ito colours (told apart with colour-blindness), then two neutrals.
export const PHASE_COLORS = [
  "#0072B2",
  "#D55E00",
  "#009E73",
  "#CC79A7",
  "#E69F00",
  "#56B4E9",
  "#8C564B",
  "#7F7F7F",
];
export const phaseColor = (index) => PHASE_COLORS[index % PHASE_COLORS.length];
const SCAN_COLOR = "#1d1d1f";
const FIT_COLOR = "#8a8a8a";
const RESIDUAL_COLOR = "#6f6f6f";
const HEIGHT = 400; // CSS px, axes included
const ROW = 10; // CSS px per row of reflection ticks
const RESIDUAL_BAND = 60; // CSS px at the bottom for the residual

const toRadians = Math.PI / 360; // half of 2θ, in radians

/**
 * The overlay's element. ``profiles`` is the response's `profiles`;
 * ``names`` overrides the phases' display names (by reference id).
 */
export function overlayView(profiles) {
  const tt = profiles.two_theta_deg;
  const dd = profiles.d_angstrom;
  // The grid's wavelength (Cu Kα1), from its own first point.
  const lambda = 2 * dd[0] * Math.sin(tt[0] * toRadians);
  const dOf = (twoTheta) => lambda / (2 * Math.sin(twoTheta * toRadians));
  const ttOf = (d) => Math.asin(Math.min(1, lambda / (2 * d))) / toRadians;
  const scan = profiles.scan;
  const residual = profiles.residual;
  const fit = scan.map((v, i) => +(v - residual[i]).toFixed(5));
  const phases = profiles.phases.map((p, index) => ({ ...p, index, color: phaseColor(index) }));

  const state = {
    axis: "tt",
    scan: true,
    fit: true,
    residual: true,
    ticks: true,
    phases: phases.map(() => true),
  };
  let u = null;
  let hits = []; // drawn ticks, for hover: {x, top, row, phase, reflection}

  // x of a 2θ on the current axis: 2θ itself, or −d (so x still grows with 2θ
  // and the pattern keeps its orientation, large d on the left).
  const xOf = (twoTheta) => (state.axis === "tt" ? twoTheta : -dOf(twoTheta));
  const twoThetaOfX = (x) => (state.axis === "tt" ? x : ttOf(-x));

  const captionId = newId("overlay-caption");
  const helpId = newId("overlay-help");
  const plotBox = h("div", { class: "plot-box" });
  const tip = h("div", { class: "plot-tip", role: "tooltip", hidden: true });
  const readout = h("p", { class: "readout" }, "Point at the plot to read values and reflections.");
  const caption = h("p", { id: captionId, class: "plot-caption", "aria-live": "polite" });
  const plot = chartFrame(
    plotBox,
    "Overlay of the scan, the fitted phases and the residual",
    `${captionId} ${helpId}`,
    () => u,
  );

  // ------------------------------------------------------------------ ranges

  const mainSeries = () => [
    state.scan ? scan : null,
    state.fit ? fit : null,
    ...phases.map((p, i) => (state.phases[i] ? p.profile : null)),
  ];
  const tickRows = () => phases.filter((p, i) => state.ticks && state.phases[i] && p.reflections.length);
  const bandPx = () => {
    const rows = tickRows().length;
    return (rows ? rows * ROW + 6 : 0) + (state.residual ? RESIDUAL_BAND : 0) + 2;
  };
  const plotHeight = (chart) =>
    chart.bbox && chart.bbox.height > 0 ? chart.bbox.height / uPlot.pxRatio : HEIGHT - 60;

  // y: the shown curves fill the top; the bottom band holds the tick rows
  // and the residual (same units as y, zero in the middle of its band).
  function yRange(chart) {
    // The x range shown, as indices (uPlot sets them before ranging y).
    const [lo, hi] = chart.series[0].idxs || [0, chart.data[0].length - 1];
    let min = 0;
    let max = -Infinity;
    for (const values of mainSeries()) {
      if (!values) continue;
      for (let i = lo; i <= hi; i++) {
        const v = values[i];
        if (v > max) max = v;
        if (v < min) min = v;
      }
    }
    if (!(max > min)) max = min + 1;
    const top = max + 0.05 * (max - min);
    const span = top - min;
    const height = plotHeight(chart);
    const band = bandPx();
    return [min - (span * band) / Math.max(height - band, 40), top];
  }
  function residualRange(chart) {
    const [lo, hi] = yRange(chart);
    const fraction = RESIDUAL_BAND / 2 / plotHeight(chart);
    return [-fraction * (hi - lo), (1 - fraction) * (hi - lo)];
  }

  // ------------------------------------------------------------------ ticks

  function drawBands(chart) {
    const pr = uPlot.pxRatio;
    const { left, top, width, height } = chart.bbox;
    if (state.residual) {
      const zero = Math.round(chart.valToPos(0, "r", true)) + 0.5;
      const ctx = chart.ctx;
      ctx.save();
      ctx.strokeStyle = "#c4c9ce";
      ctx.lineWidth = pr;
      ctx.setLineDash([3 * pr, 3 * pr]);
      ctx.beginPath();
      ctx.moveTo(left, zero);
      ctx.lineTo(left + width, zero);
      ctx.stroke();
      ctx.fillStyle = "#5b6168";
      ctx.font = `${11 * pr}px system-ui, sans-serif`;
      ctx.textAlign = "left";
      ctx.textBaseline = "bottom";
      ctx.fillText("residual", left + 4 * pr, top + height - 4 * pr);
      ctx.restore();
    }
    drawTicks(chart, pr, left, top, width, height);
  }

  function drawTicks(chart, pr, left, top, width, height) {
    hits = [];
    const rows = tickRows();
    if (!rows.length) return;
    const bottom = top + height - (state.residual ? RESIDUAL_BAND * pr : 0) - 3 * pr;
    const ctx = chart.ctx;
    ctx.save();
    ctx.lineWidth = Math.max(1, 1.5 * pr);
    rows.forEach((phase, k) => {
      const rowBottom = bottom - (rows.length - 1 - k) * ROW * pr;
      ctx.strokeStyle = phase.color;
      ctx.beginPath();
      for (const r of phase.reflections) {
        const x = chart.valToPos(xOf(r.two_theta_deg), "x", true);
        if (x < left - 1 || x > left + width + 1) continue;
        const length = (ROW - 2) * pr * (0.4 + 0.6 * Math.sqrt(Math.max(0, r.intensity)));
        ctx.moveTo(x, rowBottom);
        ctx.lineTo(x, rowBottom - length);
        hits.push({ x: (x - left) / pr, top: (rowBottom - top) / pr - ROW, row: k, phase, reflection: r });
      }
      ctx.stroke();
    });
    ctx.restore();
  }

  // ------------------------------------------------------------------ hover

  function onCursor(chart) {
    const { left, top, idx } = chart.cursor;
    if (left === null || left === undefined || left < 0 || idx === null || idx === undefined) {
      tip.hidden = true;
      return;
    }
    const twoTheta = twoThetaOfX(chart.posToVal(left, "x"));
    readout.textContent =
      `2θ ${twoTheta.toFixed(2)}° · d ${dOf(twoTheta).toFixed(4)} Å · scan ${fmt(scan[idx], 3)} · ` +
      `fit ${fmt(fit[idx], 3)} · residual ${fmt(residual[idx], 3)}`;
    const inRow = (hit) => top >= hit.top && top <= hit.top + ROW;
    const anyRow = hits.some(inRow);
    let best = null;
    let bestDistance = anyRow ? 8 : 4;
    for (const hit of hits) {
      if (anyRow && !inRow(hit)) continue;
      const distance = Math.abs(hit.x - left);
      if (distance < bestDistance) [best, bestDistance] = [hit, distance];
    }
    if (!best) {
      tip.hidden = true;
      return;
    }
    const r = best.reflection;
    tip.replaceChildren(
      h("strong", {}, `${best.phase.name} (${hklText(r.hkl)})`),
      h("br"),
      `2θ ${r.two_theta_deg.toFixed(2)}° · d ${r.d_angstrom.toFixed(4)} Å · I ${(100 * r.intensity).toFixed(0)}`,
    );
    tip.hidden = false;
    const overWidth = chart.over.clientWidth;
    tip.style.left = `${Math.min(left + 12, overWidth - 230)}px`;
    tip.style.top = `${Math.max(0, top - 46)}px`;
  }

  // ------------------------------------------------------------------ chart

  function options(width) {
    const dAxis = state.axis === "d";
    return {
      width,
      height: HEIGHT,
      legend: { show: false },
      cursor: { drag: { x: true, y: false }, points: { show: false }, y: false },
      scales: {
        x: { time: false },
        y: { range: yRange },
        r: { range: residualRange },
      },
      axes: [
        {
          label: dAxis ? "d (Å)" : "2θ (degrees, Cu Kα1)",
          labelSize: 22,
          space: 56,
          grid: { stroke: "#e6e6e6", width: 1 },
          values: (chart, splits, _i, _space, increment) =>
            splits.map((v) => (dAxis ? -v : v).toFixed(decimalsFor(increment))),
        },
        {
          scale: "y",
          label: "Intensity (scan maximum = 1)",
          labelSize: 22,
          size: 48,
          grid: { stroke: "#eeeeee", width: 1 },
          values: (chart, splits, _i, _space, increment) =>
            splits.map((v) => (v < -1e-9 ? "" : v.toFixed(decimalsFor(increment)))),
        },
      ],
      series: [
        {},
        { label: "Scan", stroke: SCAN_COLOR, width: 1.4, show: state.scan },
        { label: "Fit (sum of phases)", stroke: FIT_COLOR, width: 1.2, dash: [5, 3], show: state.fit },
        ...phases.map((p, i) => ({ label: p.name, stroke: p.color, width: 1.4, show: state.phases[i] })),
        { label: "Residual", stroke: RESIDUAL_COLOR, width: 1, scale: "r", show: state.residual },
      ],
      hooks: {
        draw: [drawBands],
        setCursor: [onCursor],
        setScale: [(chart, key) => key === "x" && describeRange(chart)],
      },
    };
  }

  function data() {
    const xs = state.axis === "tt" ? tt : dd.map((v) => -v);
    return [xs, scan, fit, ...phases.map((p) => p.profile), residual];
  }

  /** (Re)build the chart, showing ``range`` of x once it is drawn. */
  function build(width, range = null) {
    if (u) u.destroy();
    u = new uPlot(options(width), data(), plotBox);
    if (range) u.setScale("x", { min: range[0], max: range[1] }); // joins the first draw
    u.over.append(tip);
    plot.dataset.axis = state.axis;
  }

  function describeRange(chart) {
    const { min, max } = chart.scales.x;
    if (min === null || max === null) return;
    const xs = chart.data[0];
    const whole = min <= xs[0] + 1e-9 && max >= xs[xs.length - 1] - 1e-9;
    const shown =
      state.axis === "tt"
        ? `2θ ${min.toFixed(2)}–${max.toFixed(2)}°`
        : `d ${(-min).toFixed(3)}–${(-max).toFixed(3)} Å`;
    caption.textContent = `Showing ${shown}${whole ? " (the whole scan)" : ""}.`;
    caption.dataset.min = String(min);
    caption.dataset.max = String(max);
  }

  /** Switch the axis, keeping the range shown. */
  function setAxis(axis) {
    if (axis === state.axis || !u) return;
    const { min, max } = u.scales.x;
    const [t0, t1] = [twoThetaOfX(min), twoThetaOfX(max)];
    state.axis = axis;
    build(u.width, [xOf(t0), xOf(t1)]);
  }

  function refresh() {
    if (u) u.setScale("x", { min: u.scales.x.min, max: u.scales.x.max });
  }

  // ------------------------------------------------------------------ controls

  const toggle = (label, checked, onChange, color, extraClass) => {
    const swatch = h("span", { class: `swatch ${extraClass || ""}`, "aria-hidden": "true" });
    if (color) swatch.style.background = color;
    return h(
      "label",
      { class: "toggle" },
      h("input", { type: "checkbox", checked, onchange: (e) => onChange(e.target.checked) }),
      swatch,
      label,
    );
  };
  const seriesIndex = { scan: 1, fit: 2, residual: 3 + phases.length };
  const showSeries = (key, index) => (on) => {
    state[key] = on;
    u?.setSeries(index, { show: on });
    refresh();
  };
  const toggles = h(
    "fieldset",
    { class: "series-toggles" },
    h("legend", {}, "Show"),
    toggle("Scan", true, showSeries("scan", seriesIndex.scan), SCAN_COLOR),
    toggle("Fit (sum)", true, showSeries("fit", seriesIndex.fit), null, "swatch-dashed"),
    phases.map((p, i) =>
      toggle(
        p.name,
        true,
        (on) => {
          state.phases[i] = on;
          u?.setSeries(3 + i, { show: on });
          refresh();
        },
        p.color,
      ),
    ),
    toggle("Residual", true, showSeries("residual", seriesIndex.residual), RESIDUAL_COLOR, "swatch-thin"),
    toggle(
      "Reflection ticks",
      true,
      (on) => {
        state.ticks = on;
        refresh();
      },
      null,
      "swatch-ticks",
    ),
  );
  const axisName = newId("axis");
  const axisSwitch = h(
    "fieldset",
    { class: "axis-switch" },
    h("legend", {}, "x axis"),
    h(
      "label",
      {},
      h("input", {
        type: "radio",
        name: axisName,
        value: "tt",
        checked: true,
        onchange: () => setAxis("tt"),
      }),
      " 2θ",
    ),
    h(
      "label",
      {},
      h("input", { type: "radio", name: axisName, value: "d", onchange: () => setAxis("d") }),
      " d (Å)",
    ),
  );
  const zoom = zoomButtons(() => u, "Show the whole scan");
  const help = h(
    "p",
    { id: helpId, class: "hint" },
    "Drag across the plot to zoom, Shift+drag to pan, double-click to see it all. With the plot " +
      "focused: ← → pan, + − zoom, 0 resets. Point at a tick for its reflection (hkl).",
  );

  const reflections = phases.some((p) => p.reflections.length)
    ? h(
        "details",
        { class: "reflections" },
        h("summary", {}, "Reflections of the phases (hkl, where the fit puts them)"),
        h(
          "div",
          { class: "reflection-tables" },
          phases
            .filter((p) => p.reflections.length)
            .map((p) =>
              h(
                "table",
                { class: "compact" },
                h("caption", {}, p.name),
                h(
                  "thead",
                  {},
                  h(
                    "tr",
                    {},
                    h("th", { scope: "col" }, "hkl"),
                    h("th", { scope: "col" }, "2θ (°)"),
                    h("th", { scope: "col" }, "d (Å)"),
                    h("th", { scope: "col" }, "I"),
                  ),
                ),
                h(
                  "tbody",
                  {},
                  p.reflections.map((r) =>
                    h(
                      "tr",
                      {},
                      h("td", {}, hklText(r.hkl)),
                      h("td", {}, r.two_theta_deg.toFixed(2)),
                      h("td", {}, r.d_angstrom.toFixed(4)),
                      h("td", {}, (100 * r.intensity).toFixed(0)),
                    ),
                  ),
                ),
              ),
            ),
        ),
      )
    : null;

  const view = h(
    "div",
    { class: "overlay" },
    h("div", { class: "overlay-controls" }, toggles, axisSwitch, zoom),
    plot,
    h("div", { class: "plot-foot" }, caption, readout),
    help,
    reflections,
  );

  plot.addEventListener("mouseleave", () => {
    tip.hidden = true;
  });
  buildWhenSized(plotBox, HEIGHT, build, () => u);
  return view;
}
