// A reference's pattern: its sticks as bars (hkl on hover) or its measured
// profile, in 2θ at the wavelength the API gives.

/* global uPlot */
import { h, fmt, hklText, newId } from "./dom.js";
import { attachNavigation, decimalsFor, navigate } from "./navigate.js";

const HEIGHT = 300;
const COLOR = "#0072B2";

/** The plot of a ReferenceDetail's `pattern` (sticks or profile). */
export function patternView(pattern) {
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
    xs = pattern.two_theta_deg;
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
    `${sticks ? `${order.length} reflections` : `${xs.length} points`} at ${pattern.wavelength_angstrom} Å. Drag to zoom, double-click to see it all.`,
  );
  const box = h("div", { class: "plot-box" });
  const plot = h(
    "div",
    {
      class: "plot",
      tabindex: "0",
      role: "application",
      "aria-roledescription": "interactive chart",
      "aria-label": sticks ? "Stick pattern of the reference" : "Measured profile of the reference",
      "aria-describedby": captionId,
    },
    box,
  );
  let u = null;

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
        readout.textContent = `2θ ${xs[idx].toFixed(2)}° · intensity ${fmt(ys[idx], 1)} %`;
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
      readout.textContent = `2θ ${x.toFixed(2)}°`;
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
            label: `2θ (degrees, ${pattern.wavelength_angstrom} Å)`,
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

  const zoomButtons = h(
    "div",
    { class: "zoom-buttons", role: "group", "aria-label": "Zoom and pan" },
    [
      ["Pan left", "left", "◀"],
      ["Zoom in", "in", "+"],
      ["Zoom out", "out", "−"],
      ["Pan right", "right", "▶"],
      ["Show it all", "reset", "Reset"],
    ].map(([label, action, text]) =>
      h(
        "button",
        {
          type: "button",
          class: "icon",
          "aria-label": label,
          title: label,
          onclick: () => u && navigate(u, action),
        },
        text,
      ),
    ),
  );
  attachNavigation(plot, () => u);
  plot.addEventListener("mouseleave", () => {
    tip.hidden = true;
  });
  let lastWidth = 0;
  new ResizeObserver(() => {
    const width = Math.floor(box.clientWidth);
    if (width < 100 || width === lastWidth) return;
    lastWidth = width;
    if (u) u.setSize({ width, height: HEIGHT });
    else build(width);
  }).observe(box);

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
    h("div", { class: "overlay-controls" }, zoomButtons),
    plot,
    h("div", { class: "plot-foot" }, caption, readout),
    strongest,
  );
}
