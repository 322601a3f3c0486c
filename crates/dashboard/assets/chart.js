// A small time-series line chart on <canvas>: nice axis ticks, HiDPI, a legend with the latest
// values, a hover crosshair, gaps where data is missing. Once drawn, the chart's element carries
// `data-points` (the number of datapoints shown) and `data-series`, which tests read.

import { h, formatNumber, formatValue } from "./dom.js";

/** The colours series take in order. */
export const PALETTE = ["#1f6feb", "#e5534b", "#2da44e", "#bf8700", "#8250df", "#0e8a9c", "#d4537e", "#6e7781"];

const PAD = { left: 48, right: 12, top: 10, bottom: 22 };

/** Rounds a rough step up to 1, 2 or 5 times a power of ten. */
export function niceStep(rough) {
  if (!(rough > 0)) return 1;
  const p = Math.pow(10, Math.floor(Math.log10(rough)));
  const m = rough / p;
  return (m <= 1 ? 1 : m <= 2 ? 2 : m <= 5 ? 5 : 10) * p;
}

const TIME_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400];

function timeStep(span, n) {
  const rough = span / n;
  return TIME_STEPS.find((s) => s >= rough) || 86400;
}

function timeLabel(t, step) {
  const d = new Date(t * 1000);
  const hh = String(d.getHours()).padStart(2, "0");
  const mm = String(d.getMinutes()).padStart(2, "0");
  if (step < 60) return `${hh}:${mm}:${String(d.getSeconds()).padStart(2, "0")}`;
  return `${hh}:${mm}`;
}

/** A line chart in `container` (an element that the chart fills). */
export class TimeChart {
  constructor(container, { unit = "", height = 180 } = {}) {
    this.unit = unit;
    this.el = container;
    this.el.classList.add("chart");
    this.canvas = h("canvas", { height });
    this.canvas.style.height = `${height}px`;
    this.tip = h("div.chart-tip");
    this.legend = h("div.legend");
    this.empty = h("div.chart-empty", "No data in this window");
    this.plot = h("div.chart-plot", this.canvas, this.tip, this.empty);
    this.el.replaceChildren(this.plot, this.legend);
    this.height = height;
    this.data = { start: 0, end: 1, series: [] };
    this.hover = null;
    this.canvas.addEventListener("mousemove", (e) => {
      this.hover = e.offsetX;
      this.draw();
    });
    this.canvas.addEventListener("mouseleave", () => {
      this.hover = null;
      this.draw();
    });
    if (window.ResizeObserver) {
      this.resize = new ResizeObserver(() => this.draw());
      this.resize.observe(this.plot);
    }
  }

  /** Shows `{start, end, period, series: [{label, color?, points: [[t, v], ...]}]}` (t in seconds). */
  setData(data) {
    this.data = data;
    const n = data.series.reduce((sum, s) => sum + s.points.length, 0);
    this.el.dataset.points = String(n);
    this.el.dataset.series = String(data.series.length);
    this.empty.hidden = n > 0;
    this.draw();
    this.drawLegend();
  }

  drawLegend() {
    const items = this.data.series.map((s, i) => {
      const last = s.points.length ? s.points[s.points.length - 1][1] : undefined;
      return h("span.legend-item",
        h("i.swatch", { dataset: { color: s.color || PALETTE[i % PALETTE.length] } }),
        `${s.label} `,
        h("b", formatValue(last, this.unit)));
    });
    this.legend.replaceChildren(...items);
    for (const sw of this.legend.querySelectorAll(".swatch")) sw.style.background = sw.dataset.color;
  }

  draw() {
    const width = this.plot.clientWidth || 400;
    const height = this.height;
    const dpr = window.devicePixelRatio || 1;
    if (this.canvas.width !== Math.round(width * dpr) || this.canvas.height !== Math.round(height * dpr)) {
      this.canvas.width = Math.round(width * dpr);
      this.canvas.height = Math.round(height * dpr);
      this.canvas.style.width = `${width}px`;
    }
    const ctx = this.canvas.getContext("2d");
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, width, height);
    const { start, end, series } = this.data;
    const period = this.data.period || 60;
    let max = 0;
    let min = 0;
    for (const s of series) for (const [, v] of s.points) {
      if (v > max) max = v;
      if (v < min) min = v;
    }
    if (max === min) max = min + 1;
    const step = niceStep((max - min) / 4);
    max = Math.ceil(max / step) * step;
    min = Math.floor(min / step) * step;
    const w = width - PAD.left - PAD.right;
    const hgt = height - PAD.top - PAD.bottom;
    const x = (t) => PAD.left + ((t - start) / (end - start)) * w;
    const y = (v) => PAD.top + hgt - ((v - min) / (max - min)) * hgt;
    const css = getComputedStyle(this.el);
    const grid = css.getPropertyValue("--grid").trim() || "#e5e7eb";
    const text = css.getPropertyValue("--muted").trim() || "#6b7280";

    ctx.font = "11px system-ui, sans-serif";
    ctx.lineWidth = 1;
    ctx.strokeStyle = grid;
    ctx.fillStyle = text;
    ctx.textAlign = "right";
    ctx.textBaseline = "middle";
    for (let v = min; v <= max + step / 2; v += step) {
      const yy = Math.round(y(v)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(PAD.left, yy);
      ctx.lineTo(width - PAD.right, yy);
      ctx.stroke();
      ctx.fillText(formatNumber(v), PAD.left - 6, yy);
    }
    const ts = timeStep(end - start, Math.max(2, Math.floor(w / 90)));
    ctx.textAlign = "center";
    ctx.textBaseline = "top";
    const offset = new Date().getTimezoneOffset() * 60;
    for (let t = Math.ceil((start - offset) / ts) * ts + offset; t <= end; t += ts) {
      const xx = Math.round(x(t)) + 0.5;
      ctx.beginPath();
      ctx.moveTo(xx, PAD.top + hgt);
      ctx.lineTo(xx, PAD.top + hgt + 4);
      ctx.stroke();
      ctx.fillText(timeLabel(t, ts), xx, PAD.top + hgt + 6);
    }

    ctx.save();
    ctx.beginPath();
    ctx.rect(PAD.left, PAD.top - 2, w, hgt + 4);
    ctx.clip();
    series.forEach((s, i) => {
      ctx.strokeStyle = s.color || PALETTE[i % PALETTE.length];
      ctx.lineWidth = 1.75;
      ctx.lineJoin = "round";
      ctx.beginPath();
      let prev = null;
      for (const [t, v] of s.points) {
        if (prev === null || t - prev > period * 1.5) ctx.moveTo(x(t), y(v));
        else ctx.lineTo(x(t), y(v));
        prev = t;
      }
      ctx.stroke();
      if (s.points.length === 1 || s.points.length < w / 40) {
        ctx.fillStyle = ctx.strokeStyle;
        for (const [t, v] of s.points) {
          ctx.beginPath();
          ctx.arc(x(t), y(v), 2.5, 0, Math.PI * 2);
          ctx.fill();
        }
      }
    });
    ctx.restore();

    this.tip.hidden = true;
    if (this.hover !== null && this.hover >= PAD.left && this.hover <= width - PAD.right) {
      const t = start + ((this.hover - PAD.left) / w) * (end - start);
      const rows = [];
      let nearest = null;
      series.forEach((s, i) => {
        let best = null;
        for (const p of s.points) if (best === null || Math.abs(p[0] - t) < Math.abs(best[0] - t)) best = p;
        if (best && Math.abs(best[0] - t) <= period * 1.5) {
          nearest = nearest === null || Math.abs(best[0] - t) < Math.abs(nearest - t) ? best[0] : nearest;
          rows.push([s.label, best[1], s.color || PALETTE[i % PALETTE.length]]);
        }
      });
      if (nearest !== null) {
        const xx = Math.round(x(nearest)) + 0.5;
        ctx.strokeStyle = text;
        ctx.setLineDash([3, 3]);
        ctx.beginPath();
        ctx.moveTo(xx, PAD.top);
        ctx.lineTo(xx, PAD.top + hgt);
        ctx.stroke();
        ctx.setLineDash([]);
        this.tip.replaceChildren(
          h("div.tip-time", new Date(nearest * 1000).toLocaleTimeString([], { hour12: false })),
          ...rows.map(([label, v]) => h("div", `${label}: `, h("b", formatValue(v, this.unit)))),
        );
        this.tip.hidden = false;
        this.tip.style.left = `${Math.min(xx + 10, width - 180)}px`;
      }
    }
  }
}

/** A tiny line of `points` ([[t, v], ...]) on a canvas, no axes; sets `data-points`. */
export function sparkline(canvas, points, color = PALETTE[0]) {
  const dpr = window.devicePixelRatio || 1;
  const w = Number(canvas.getAttribute("width"));
  const hgt = Number(canvas.getAttribute("height"));
  canvas.width = w * dpr;
  canvas.height = hgt * dpr;
  canvas.style.width = `${w}px`;
  canvas.style.height = `${hgt}px`;
  canvas.dataset.points = String(points.length);
  const ctx = canvas.getContext("2d");
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  if (points.length < 2) return;
  const t0 = points[0][0];
  const t1 = points[points.length - 1][0];
  const max = Math.max(...points.map((p) => p[1]), 1e-9);
  const x = (t) => 1 + ((t - t0) / Math.max(1e-9, t1 - t0)) * (w - 2);
  const y = (v) => hgt - 2 - (v / max) * (hgt - 4);
  ctx.beginPath();
  points.forEach(([t, v], i) => (i ? ctx.lineTo(x(t), y(v)) : ctx.moveTo(x(t), y(v))));
  ctx.strokeStyle = color;
  ctx.lineWidth = 1.5;
  ctx.stroke();
  ctx.lineTo(x(t1), hgt);
  ctx.lineTo(x(t0), hgt);
  ctx.closePath();
  ctx.globalAlpha = 0.12;
  ctx.fillStyle = color;
  ctx.fill();
  ctx.globalAlpha = 1;
}
