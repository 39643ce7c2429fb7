// Charts of the console on the vendored uPlot (static/vendor/uplot, MIT licence): time series with
// zoom (drag to select, double-click to reset), markers (incidents as shaded spans) and horizontal
// threshold lines, and per-epoch loss curves.

import uPlot from "/console/vendor/uplot/uPlot.esm.js";

const COLORS = ["#1f6feb", "#e8590c", "#2f9e44", "#ae3ec9", "#0c8599", "#c92a2a", "#5c940d", "#862e9c"];

export { uPlot };

function markersPlugin(getMarkers, getThresholds) {
  return {
    hooks: {
      draw: [(u) => {
        const ctx = u.ctx;
        const { left, top, width, height } = u.bbox;
        ctx.save();
        for (const m of getMarkers()) {
          const x0 = u.valToPos(m.from, "x", true);
          const x1 = Math.max(u.valToPos(m.to ?? m.from, "x", true), x0 + 3);
          if (x1 < left || x0 > left + width) continue;
          ctx.fillStyle = "rgba(198, 40, 40, 0.18)";
          ctx.fillRect(Math.max(x0, left), top, Math.min(x1, left + width) - Math.max(x0, left), height);
          ctx.fillStyle = "#c62828";
          ctx.beginPath();
          ctx.arc(Math.max(x0, left), top + 6, 4, 0, 2 * Math.PI);
          ctx.fill();
        }
        for (const t of getThresholds()) {
          const y = u.valToPos(t.value, t.scale || "y", true);
          if (!(y >= top && y <= top + height)) continue;
          ctx.strokeStyle = "#c62828";
          ctx.setLineDash([6, 4]);
          ctx.beginPath(); ctx.moveTo(left, y); ctx.lineTo(left + width, y); ctx.stroke();
        }
        ctx.restore();
      }],
    },
  };
}

/**
 * A time chart in `el`. opts: {labels: [...], height, onZoom(fromS, toS), markers: [], thresholds: []}.
 * Returns {setData(tables), setMarkers(list), setThresholds(list), destroy(), plot}.
 * `tables` are [[times...], [values...]] per series (times in epoch seconds), joined by uPlot.
 */
export function timeChart(el, opts) {
  let markers = opts.markers || [];
  let thresholds = opts.thresholds || [];
  let zooming = false;
  const series = [{}].concat(opts.labels.map((label, i) => ({
    label, stroke: COLORS[i % COLORS.length], width: 1, spanGaps: false, points: { show: false },
  })));
  const plot = new uPlot({
    width: Math.max(el.clientWidth, 280), height: opts.height || 280, series,
    scales: { x: { time: true } },
    cursor: { drag: { x: true, y: false, setScale: true } },
    plugins: [markersPlugin(() => markers, () => thresholds)],
    hooks: {
      setSelect: [() => { zooming = true; }],
      setScale: [(u, key) => {
        if (key !== "x" || !zooming || !opts.onZoom) return;
        zooming = false;
        opts.onZoom(u.scales.x.min, u.scales.x.max);
      }],
    },
  }, [[], ...opts.labels.map(() => [])], el);
  el.addEventListener("dblclick", () => opts.onReset && opts.onReset());
  const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 280), height: opts.height || 280 }));
  resize.observe(el);
  return {
    plot,
    setData(tables) {
      const data = tables.length === 1 ? tables[0] : uPlot.join(tables);
      plot.setData(data);
    },
    setMarkers(list) { markers = list; plot.redraw(false); },
    setThresholds(list) { thresholds = list; plot.redraw(false); },
    destroy() { resize.disconnect(); plot.destroy(); },
  };
}

/** Train and validation loss per epoch: losses = [{epoch, train_loss, validation_loss}]. */
export function lossChart(el, losses, title) {
  const xs = losses.map((l) => l.epoch);
  const plot = new uPlot({
    title, width: Math.max(el.clientWidth, 280), height: 220,
    scales: { x: { time: false } },
    axes: [{ label: "epoch" }, { label: "loss" }],
    series: [{ label: "epoch" },
      { label: "train loss", stroke: COLORS[0], width: 1.5 },
      { label: "validation loss", stroke: COLORS[1], width: 1.5 }],
  }, [xs, losses.map((l) => l.train_loss ?? null), losses.map((l) => l.validation_loss ?? null)], el);
  const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(el.clientWidth, 280), height: 220 }));
  resize.observe(el);
  return {
    plot,
    update(next) { plot.setData([next.map((l) => l.epoch), next.map((l) => l.train_loss ?? null), next.map((l) => l.validation_loss ?? null)]); },
    destroy() { resize.disconnect(); plot.destroy(); },
  };
}
