// Line charts of a job's history (uPlot, vendored), resized with their container.
import uPlot from "../vendor/uplot/uPlot.esm.js";
import { formatNumber, h, replace } from "./dom.js";

const HEIGHT = 240;

/**
 * A chart over steps: `series` is [{label, color, key, sparse}] where `key` picks the value from a
 * point and sparse series (eval loss) are drawn as dots joined across the steps they skip.
 * Returns {el, update(points), destroy()}; the figure's data-points (and data-points-<key> per
 * series) attributes count the points drawn, for people's tools and tests alike.
 */
export function stepChart({ title, series, yLabel }) {
  const plotArea = h("div", { class: "chart-area" });
  const empty = h("p", { class: "muted chart-empty" }, "Waiting for the first steps…");
  const el = h("figure", { class: "chart", "data-points": "0", "aria-label": title },
    h("figcaption", {}, title), empty, plotArea);
  let plot = null;
  let observer = null;

  const options = (width) => ({
    width,
    height: HEIGHT,
    legend: { live: true },
    cursor: { drag: { x: true, y: false } },
    scales: { x: { time: false } },
    axes: [
      { label: "step", stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.15)" } },
      {
        label: yLabel, stroke: "currentColor", grid: { stroke: "rgba(128,128,128,0.15)" }, size: 64,
        values: (u, ticks) => ticks.map((t) => formatNumber(t, 3)),
      },
    ],
    series: [
      { label: "step" },
      ...series.map((s) => ({
        label: s.label,
        stroke: s.color,
        width: 2,
        spanGaps: Boolean(s.sparse),
        points: { show: Boolean(s.sparse), size: 6, fill: s.color },
        value: (u, v) => formatNumber(v, 4),
      })),
    ],
  });

  function toColumns(points) {
    const bySteps = new Map();
    for (const p of points) {
      const row = bySteps.get(p.step) || {};
      for (const s of series) if (p[s.key] !== null && p[s.key] !== undefined) row[s.key] = p[s.key];
      bySteps.set(p.step, row);
    }
    const steps = [...bySteps.keys()].sort((a, b) => a - b);
    return [steps, ...series.map((s) => steps.map((step) => bySteps.get(step)[s.key] ?? null))];
  }

  /** Draw `points`; `finished` says no more will come (so an empty chart says so). */
  function update(points, finished = false) {
    const data = toColumns(points);
    const counts = data.slice(1).map((col) => col.filter((v) => v !== null).length);
    const drawn = counts.reduce((a, b) => a + b, 0);
    el.dataset.points = String(drawn);
    series.forEach((s, i) => el.setAttribute(`data-points-${s.key}`, String(counts[i])));
    if (!drawn) {
      empty.textContent = finished ? "No steps were recorded for this job." : "Waiting for the first steps…";
      return;
    }
    empty.hidden = true;
    if (!plot) {
      plot = new uPlot(options(Math.max(plotArea.clientWidth, 240)), data, plotArea);
      observer = new ResizeObserver(() => plot.setSize({ width: Math.max(plotArea.clientWidth, 240), height: HEIGHT }));
      observer.observe(plotArea);
    } else {
      plot.setData(data);
    }
  }

  function destroy() {
    if (observer) observer.disconnect();
    if (plot) plot.destroy();
    replace(plotArea);
  }

  return { el, update, destroy };
}
