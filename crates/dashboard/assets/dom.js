// Small DOM helpers: build elements without HTML strings (no injection), format numbers and times.

/** h("div.card", {title: "x", onclick: f}, child, "text", [more]) → an element. */
export function h(tag, attrs, ...children) {
  const [name, ...classes] = tag.split(".");
  const el = document.createElement(name || "div");
  if (classes.length) el.className = classes.join(" ");
  if (attrs && (typeof attrs !== "object" || attrs instanceof Node || Array.isArray(attrs))) {
    children.unshift(attrs);
    attrs = null;
  }
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") el.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(el.dataset, v);
    else if (k === "value") el.value = v;
    else el.setAttribute(k, v === true ? "" : String(v));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const c of children) {
    if (c === undefined || c === null || c === false) continue;
    if (Array.isArray(c)) append(el, c);
    else el.append(c instanceof Node ? c : String(c));
  }
}

/** Replaces the children of `el`. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

/** The last part of an ARN or path (`.../service/default/web` → `web`). */
export function shortName(arn) {
  if (!arn) return "";
  const s = String(arn);
  return s.slice(s.lastIndexOf("/") + 1);
}

/**
 * A dimension value for people: the name inside `targetgroup/<name>/<id>` and
 * `app/<name>/<id>`, else the value itself.
 */
export function dimensionLabel(value) {
  const m = String(value).match(/^(?:targetgroup|app|net)\/([^/]+)\/[^/]+$/);
  return m ? m[1] : String(value);
}

/** A task definition ARN's `family:revision`. */
export function taskDefName(arn) {
  return shortName(arn);
}

/** Epoch seconds → local `HH:MM:SS` (and the date when not today). */
export function formatTime(seconds) {
  if (seconds === undefined || seconds === null) return "";
  const d = new Date(seconds * 1000);
  const today = new Date();
  const time = d.toLocaleTimeString([], { hour12: false });
  return d.toDateString() === today.toDateString() ? time : `${d.toLocaleDateString()} ${time}`;
}

/** Seconds → `3s`, `5m`, `2h 10m`, `3d 4h`. */
export function formatDuration(s) {
  s = Math.max(0, Math.floor(s));
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m ${s % 60}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h ${Math.floor((s % 3600) / 60)}m`;
  return `${Math.floor(s / 86400)}d ${Math.floor((s % 86400) / 3600)}h`;
}

/** How long ago `seconds` (epoch) was. */
export function ago(seconds) {
  if (!seconds) return "";
  return `${formatDuration(Date.now() / 1000 - seconds)} ago`;
}

/** A number in a short readable form: 0.123, 12.3, 1.23k, 4.5M. */
export function formatNumber(v, digits = 3) {
  if (v === undefined || v === null || !isFinite(v)) return "–";
  const a = Math.abs(v);
  if (a >= 1e9) return `${+(v / 1e9).toPrecision(digits)}G`;
  if (a >= 1e6) return `${+(v / 1e6).toPrecision(digits)}M`;
  if (a >= 1e4) return `${+(v / 1e3).toPrecision(digits)}k`;
  if (a === 0) return "0";
  if (a >= 100) return String(Math.round(v));
  return String(+v.toPrecision(digits));
}

/** A value with its unit: `12.5 ms`, `3.2/s`, `45 %`. */
export function formatValue(v, unit) {
  const n = formatNumber(v);
  if (!unit || n === "–") return n;
  if (unit === "/s" || unit === "%") return `${n}${unit === "%" ? " %" : "/s"}`;
  return `${n} ${unit}`;
}

/** A status word as a coloured badge (`ACTIVE`, `ALARM`, `RUNNING`, ...). */
export function badge(text) {
  const t = String(text || "—");
  const kind = {
    ACTIVE: "ok", RUNNING: "ok", HEALTHY: "ok", OK: "ok", COMPLETED: "ok", SUCCESSFUL: "ok", PRIMARY: "ok", Complete: "ok",
    ALARM: "bad", FAILED: "bad", UNHEALTHY: "bad", STOPPED: "muted", INACTIVE: "muted", ROLLBACK_SUCCESSFUL: "warn",
    DRAINING: "warn", PENDING: "warn", PROVISIONING: "warn", ACTIVATING: "warn", DEACTIVATING: "warn", STOPPING: "warn",
    IN_PROGRESS: "warn", INSUFFICIENT_DATA: "muted", UNKNOWN: "muted", Running: "warn", Scheduled: "warn",
    ROLLBACK_IN_PROGRESS: "warn", ROLLBACK_FAILED: "bad", STOP_REQUESTED: "warn", Failed: "bad", Cancelled: "muted", Timeout: "bad",
  }[t] || "muted";
  return h(`span.badge.${kind}`, t);
}
