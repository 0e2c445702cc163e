// A reference's pattern: its sticks as bars (hkl on hover) or its measured
// profile, in 2θ at the wavelength the API gives; or a Raman reference's
// spectrum over Raman shift.

/* global uPlot */
import { h, fmt, hklText, newId } from "./dom.js";
import { buildWhenSized, chartFrame, decimalsFor, zoomButtons } from "./navigate.js";

const HEIGHT = 300;
const COLOR = "#0072B2";

/** How each kind of stored pattern is drawn: its x values, axis and words. */
const KINDS = {
  sticks: {
    x: (p) => p.two_theta_deg,
    axis: (p) => `2θ (degrees, ${p.wavelength_angstrom} Å)`,
    label: "Stick pattern of the reference",
    read: (x) => `2θ ${x.toFixed(2)}°`,
    what: (p, n) => `${n} reflections at ${p.wavelength_angstrom} Å`,
  },
  profile: {
    x: (p) => p.two_theta_deg,
    axis: (p) => `2θ (degrees, ${p.wavelength_angstrom} Å)`,
    label: "Measured profile of the reference",
    read: (x) => `2θ ${x.toFixed(2)}°`,
    what: (p, n) => `${n} points at ${p.wavelength_angstrom} Å`,
  },
  raman: {
    x: (p) => p.shift_cm1,
    axis: () => "Raman shift (cm⁻¹)",
    label: "Raman spectrum of the reference",
    read: (x) => `Raman shift ${x.toFixed(0)} cm⁻¹`,
    what: (p, n) =>
      `${n} points${p.laser_wavelength_nm ? `, measured with a ${p.laser_wavelength_nm} nm laser` : ""}`,
  },
};

/** The plot of a ReferenceDetail's `pattern` (sticks, profile or Raman spectrum). */
export function patternView(pattern) {
  const kind = KINDS[pattern.type];
  const sticks = pattern.type === "sticks";
  const order = sticks
    ? [...pattern.two_theta_deg.keys()].sort((a, b) => pattern.two_theta_deg[a] - pattern.two_theta_deg[b])
    : null;
  let xs;
  let ys;
  if (sticks) {
    // Each stick is drawn as a spike: (x, 0) → (x, I) → (x, 0).
    // From 5° (or below the first stick), so the plot starts where scans do.
    const first = order.length ? pattern.two_theta_deg[order[0]] : 5;
    xs = [Math.min(5, first - 1)];
    ys = [0];
    for (const i of order) {
      const x = pattern.two_theta_deg[i];
      xs.push(x, x, x);
      ys.push(0, pattern.relative_intensity[i], 0);
    }
  } else {
    xs = kind.x(pattern);
    const peak = Math.max(...pattern.intensity.map(Math.abs), 1e-12);
    ys = pattern.intensity.map((v) => (100 * v) / peak);
  }
  const captionId = newId("pattern-caption");
  const tip = h("div", { class: "plot-tip", role: "tooltip", hidden: true });
  const readout = h(
    "p",
    { class: "readout" },
    sticks ? "Point at a bar for its reflection." : "Point at the plot to read values.",
  );
  const caption = h(
    "p",
    { id: captionId, class: "plot-caption" },
    `${kind.what(pattern, sticks ? order.length : xs.length)}. Drag to zoom, double-click to see it all.`,
  );
  const box = h("div", { class: "plot-box" });
  let u = null;
  const plot = chartFrame(box, kind.label, captionId, () => u);

  function onCursor(chart) {
    const { left, top } = chart.cursor;
    if (left === null || left === undefined || left < 0) {
      tip.hidden = true;
      return;
    }
    const x = chart.posToVal(left, "x");
    if (!sticks) {
      const idx = chart.cursor.idx;
      if (idx !== null && idx !== undefined)
        readout.textContent = `${kind.read(xs[idx])} · intensity ${fmt(ys[idx], 1)} %`;
      return;
    }
    let best = -1;
    let bestPx = 6;
    for (const i of order) {
      const px = Math.abs(chart.valToPos(pattern.two_theta_deg[i], "x") - left);
      if (px < bestPx) [best, bestPx] = [i, px];
    }
    if (best < 0) {
      tip.hidden = true;
      readout.textContent = kind.read(x);
      return;
    }
    const text = `(${hklText(pattern.hkl[best])}) · 2θ ${pattern.two_theta_deg[best].toFixed(2)}° · d ${pattern.d_angstrom[best].toFixed(4)} Å · I ${pattern.relative_intensity[best].toFixed(1)}`;
    readout.textContent = text;
    tip.textContent = text;
    tip.hidden = false;
    tip.style.left = `${Math.min(left + 12, chart.over.clientWidth - 260)}px`;
    tip.style.top = `${Math.max(0, top - 30)}px`;
  }

  function build(width) {
    u = new uPlot(
      {
        width,
        height: HEIGHT,
        legend: { show: false },
        cursor: { drag: { x: true, y: false }, points: { show: false }, y: false },
        scales: { x: { time: false }, y: { range: (_u, _min, max) => [0, Math.max(max, 1) * 1.05] } },
        axes: [
          {
            label: kind.axis(pattern),
            labelSize: 22,
            grid: { stroke: "#e6e6e6" },
            values: (_c, splits, _i, _s, inc) => splits.map((v) => v.toFixed(decimalsFor(inc))),
          },
          { label: "Relative intensity", labelSize: 22, size: 44, grid: { stroke: "#eeeeee" } },
        ],
        series: [{}, { label: sticks ? "Reflections" : "Profile", stroke: COLOR, width: sticks ? 1.6 : 1.3 }],
        hooks: { setCursor: [onCursor] },
      },
      [xs, ys],
      box,
    );
    u.over.append(tip);
  }

  plot.addEventListener("mouseleave", () => {
    tip.hidden = true;
  });
  buildWhenSized(box, HEIGHT, build, () => u);

  const strongest = sticks
    ? h(
        "details",
        { class: "reflections" },
        h("summary", {}, "Reflections, strongest first"),
        h(
          "table",
          { class: "compact" },
          h(
            "thead",
            {},
            h(
              "tr",
              {},
              ["hkl", "2θ (°)", "d (Å)", "I"].map((t) => h("th", { scope: "col" }, t)),
            ),
          ),
          h(
            "tbody",
            {},
            [...order]
              .sort((a, b) => pattern.relative_intensity[b] - pattern.relative_intensity[a])
              .slice(0, 40)
              .map((i) =>
                h(
                  "tr",
                  {},
                  h("td", {}, hklText(pattern.hkl[i])),
                  h("td", {}, pattern.two_theta_deg[i].toFixed(2)),
                  h("td", {}, pattern.d_angstrom[i].toFixed(4)),
                  h("td", {}, pattern.relative_intensity[i].toFixed(1)),
                ),
              ),
          ),
        ),
      )
    : null;
  return h(
    "div",
    { class: "pattern" },
    h("div", { class: "overlay-controls" }, zoomButtons(() => u, "Show it all")),
    plot,
    h("div", { class: "plot-foot" }, caption, readout),
    strongest,
  );
}
