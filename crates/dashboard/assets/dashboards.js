// CloudWatch dashboards: the list (ListDashboards) and one dashboard (GetDashboard) drawn from
// its JSON body: widgets on a 24-column grid at x/y/width/height; metric widgets as charts (or
// single values), text widgets as simple markdown, alarm widgets as alarm states, log widgets by
// running their Insights query.

import { h, replace, formatTime, ago, formatValue, badge } from "./dom.js";
import * as api from "./api.js";
import { TimeChart } from "./chart.js";
import { fetchCharts, widgetQueries } from "./metrics.js";
import { showResults } from "./logs.js";

/** Pixel height of one grid row (CloudWatch's widgets are 6 rows high by default). */
const ROW_PX = 36;
const GAP_PX = 10;

/** The dashboards of this account. */
export async function dashboardsView(main) {
  const list = h("div");
  replace(main, h("section.card", h("h2", "Dashboards"), list));
  async function refresh() {
    const r = await api.cloudwatch("ListDashboards", {});
    const entries = r.DashboardEntries || [];
    replace(list, entries.length
      ? h("table",
        h("thead", h("tr", h("th", "Dashboard"), h("th", "Last modified"), h("th", "Size"))),
        h("tbody", entries.map((d) => h("tr",
          h("td", h("a.dashboard-link", { href: `/dashboard/dashboards/${encodeURIComponent(d.DashboardName)}` }, d.DashboardName)),
          h("td", { title: formatTime(d.LastModified) }, ago(d.LastModified)),
          h("td", `${d.Size} bytes`)))))
      : h("div.empty",
        h("p.muted", "No dashboards yet. A dashboard is a JSON body of widgets, as CloudWatch defines it:"),
        h("pre.code", 'aws cloudwatch put-dashboard --dashboard-name web --dashboard-body \'{"widgets":[{"type":"metric","x":0,"y":0,"width":12,"height":6,"properties":{"title":"CPU","metrics":[["AWS/ECS","CPUUtilization","ClusterName","default","ServiceName","web"]],"period":60,"stat":"Average"}}]}\'')));
  }
  return { refresh };
}

/** Minimal markdown: headings, lists, paragraphs, **bold**, `code`; links become plain text. */
export function markdown(text) {
  const out = [];
  let list = null;
  let para = [];
  const inline = (s) => {
    const parts = [];
    const re = /(\*\*[^*]+\*\*|`[^`]+`|\[[^\]]+\]\([^)]+\))/g;
    let last = 0;
    for (const m of s.matchAll(re)) {
      parts.push(s.slice(last, m.index));
      const t = m[0];
      if (t.startsWith("**")) parts.push(h("b", t.slice(2, -2)));
      else if (t.startsWith("`")) parts.push(h("code", t.slice(1, -1)));
      else {
        const [, label, href] = t.match(/^\[([^\]]+)\]\(([^)]+)\)$/);
        parts.push(href.startsWith("/") && !href.startsWith("//") ? h("a", { href }, label) : h("span", { title: href }, label));
      }
      last = m.index + t.length;
    }
    parts.push(s.slice(last));
    return parts;
  };
  const flush = () => {
    if (para.length) out.push(h("p", inline(para.join(" "))));
    para = [];
    list = null;
  };
  for (const line of String(text || "").split("\n")) {
    const heading = line.match(/^(#{1,3})\s+(.*)$/);
    const item = line.match(/^\s*[-*]\s+(.*)$/);
    if (heading) {
      flush();
      out.push(h(`h${heading[1].length + 2}`, inline(heading[2])));
    } else if (item) {
      if (para.length) flush();
      if (!list) {
        list = h("ul");
        out.push(list);
      }
      list.append(h("li", inline(item[1])));
    } else if (!line.trim()) {
      flush();
    } else {
      list = null;
      para.push(line.trim());
    }
  }
  flush();
  return out;
}

function place(el, w, auto) {
  const width = Math.min(24, Math.max(1, Number(w.width) || 6));
  const height = Math.max(1, Number(w.height) || 6);
  if (!auto && Number.isFinite(Number(w.x)) && Number.isFinite(Number(w.y))) {
    el.style.gridColumn = `${Math.min(23, Number(w.x)) + 1} / span ${Math.min(width, 24 - Math.min(23, Number(w.x)))}`;
    el.style.gridRow = `${Number(w.y) + 1} / span ${height}`;
  } else {
    el.style.gridColumn = `span ${width}`;
    el.style.gridRow = `span ${height}`;
  }
  return height * ROW_PX + (height - 1) * GAP_PX;
}

/** One dashboard, drawn from its body and refreshed live. */
export async function dashboardView(main, ctx) {
  const [name] = ctx.params;
  const r = await api.cloudwatch("GetDashboard", { DashboardName: name });
  let body;
  try {
    body = JSON.parse(r.DashboardBody);
  } catch (e) {
    replace(main, h("div.error", `Dashboard ${name}: the body is not JSON (${e.message}).`));
    return {};
  }
  const widgets = Array.isArray(body.widgets) ? body.widgets : [];
  const grid = h("div.dash-grid", { id: "dashboard-grid" });
  grid.style.gridAutoRows = `${ROW_PX}px`;
  grid.style.gap = `${GAP_PX}px`;
  const auto = widgets.some((w) => w.x === undefined || w.y === undefined);
  const metricWidgets = [];
  const alarmWidgets = [];
  const logWidgets = [];
  widgets.forEach((w, i) => {
    const props = w.properties || {};
    const el = h("section.card.widget", { dataset: { widget: String(i), type: String(w.type) } });
    const px = place(el, w, auto);
    const title = props.title || (w.type === "text" ? "" : w.type);
    if (title) el.append(h("h3", title));
    if (w.type === "metric") {
      const { queries, errors } = widgetQueries(props);
      const view = props.view || "timeSeries";
      const holder = h("div");
      el.append(holder);
      if (errors.length) el.append(h("p.error-text", errors.join("; ")));
      const unit = "";
      const chart = view === "singleValue" ? null : new TimeChart(holder, { unit, height: Math.max(80, px - 70) });
      metricWidgets.push({ spec: { key: `w${i}`, title, unit, queries, period: props.period }, chart, holder, view });
    } else if (w.type === "text") {
      el.classList.add("text-widget");
      el.append(h("div.markdown", markdown(props.markdown)));
    } else if (w.type === "alarm") {
      const holder = h("div");
      el.append(holder);
      alarmWidgets.push({ holder, names: (props.alarms || []).map((a) => String(a).split(":alarm:").pop()) });
    } else if (w.type === "log") {
      const holder = h("div.results");
      el.append(holder);
      logWidgets.push({ holder, query: String(props.query || "") });
    } else {
      el.append(h("p.muted", `Widgets of type "${w.type}" are not drawn by berth's dashboard.`));
    }
    grid.append(el);
  });
  replace(main,
    h("nav.crumbs", h("a", { href: "/dashboard/dashboards" }, "Dashboards"), " / ", h("span", name)),
    widgets.length ? grid : h("p.muted", "This dashboard has no widgets."));

  let logWindow = null;
  async function runLogWidgets(windowSeconds) {
    logWindow = windowSeconds;
    for (const w of logWidgets) {
      const sources = [...w.query.matchAll(/SOURCE\s+'([^']+)'/g)].map((m) => m[1]);
      const queryString = w.query.replace(/SOURCE\s+'[^']+'\s*\|?/g, "").trim();
      const end = Math.ceil(Date.now() / 1000);
      try {
        const started = await api.logs("StartQuery", { logGroupNames: sources, startTime: end - windowSeconds, endTime: end, queryString });
        for (let n = 0; n < 60; n++) {
          const res = await api.logs("GetQueryResults", { queryId: started.queryId });
          showResults(w.holder, res.results || []);
          if (!["Scheduled", "Running"].includes(res.status)) break;
          await new Promise((ok) => setTimeout(ok, 500));
        }
      } catch (e) {
        replace(w.holder, h("p.error-text", e.message));
      }
    }
  }

  async function refresh(c) {
    if (metricWidgets.length) {
      const data = await fetchCharts(metricWidgets.map((m) => m.spec), c.window);
      if (!c.isCurrent()) return;
      metricWidgets.forEach((m, i) => {
        if (m.chart) m.chart.setData(data[i]);
        else {
          const points = data[i].series.reduce((n, s) => n + s.points.length, 0);
          replace(m.holder, h("div.single-values", { dataset: { points: String(points) } }, data[i].series.map((s) =>
            h("div.single", h("span", s.label), h("b", formatValue(s.points.length ? s.points[s.points.length - 1][1] : undefined, m.spec.unit))))));
        }
      });
    }
    for (const w of alarmWidgets) {
      try {
        const res = await api.cloudwatch("DescribeAlarms", { AlarmNames: w.names, AlarmTypes: ["MetricAlarm", "CompositeAlarm"] });
        const all = [...(res.MetricAlarms || []), ...(res.CompositeAlarms || [])];
        replace(w.holder, all.length ? h("ul.alarm-list", all.map((a) => h("li", badge(a.StateValue), " ", h("b", a.AlarmName), h("span.muted", ` ${a.StateReason || ""}`))))
          : h("p.muted", "None of these alarms exist."));
      } catch (e) {
        replace(w.holder, h("p.error-text", e.message));
      }
    }
    if (logWidgets.length && logWindow !== c.window) runLogWidgets(c.window);
  }
  return { refresh };
}
