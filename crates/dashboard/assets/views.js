// The cluster views: the overview (services, alarms, recent events), one service's page (golden
// signals, deployments, tasks, events, alarms) and the alarms page. A view is an async function
// (main, ctx) → {refresh(ctx), unmount()} that builds its skeleton once and fills it on refresh.

import { h, replace, shortName, dimensionLabel, taskDefName, formatTime, ago, formatValue, badge } from "./dom.js";
import * as api from "./api.js";
import { TimeChart, sparkline } from "./chart.js";
import { serviceCharts, fetchCharts, targetGroupDimension, targetGroupDimensions } from "./metrics.js";

function table(headers, rows, empty) {
  if (!rows.length) return h("p.muted.empty", empty);
  return h("table",
    h("thead", h("tr", headers.map((x) => h("th", x)))),
    h("tbody", rows));
}

function section(title, ...body) {
  return h("section.card", h("h2", title), ...body);
}

/** The primary deployment's rollout state, else the service's deployments summarized. */
function rollout(service) {
  const primary = (service.deployments || []).find((d) => d.status === "PRIMARY");
  if (!primary) return badge("—");
  const state = primary.rolloutState || "COMPLETED";
  const others = (service.deployments || []).length - 1;
  return h("span", badge(state), others > 0 ? h("span.muted", ` +${others} draining`) : null);
}

function tasksCell(s) {
  return h("span.tasks",
    h("b", `${s.runningCount}/${s.desiredCount}`),
    s.pendingCount ? h("span.muted", ` (${s.pendingCount} pending)`) : null);
}

/** Alarms whose dimensions name this service or one of its target groups. */
function alarmsOf(alarms, serviceName, targetGroups) {
  return alarms.filter((a) => (a.Dimensions || []).some((d) =>
    (d.Name === "ServiceName" && d.Value === serviceName) || (d.Name === "TargetGroup" && targetGroups.includes(d.Value))));
}

async function describeAlarms() {
  const r = await api.cloudwatch("DescribeAlarms", { AlarmTypes: ["MetricAlarm", "CompositeAlarm"], MaxRecords: 100 });
  const all = [...(r.MetricAlarms || []), ...(r.CompositeAlarms || [])];
  const rank = { ALARM: 0, INSUFFICIENT_DATA: 1, OK: 2 };
  all.sort((a, b) => (rank[a.StateValue] ?? 3) - (rank[b.StateValue] ?? 3) || a.AlarmName.localeCompare(b.AlarmName));
  return all;
}

function condition(a) {
  if (a.AlarmRule) return h("code", a.AlarmRule);
  const op = {
    GreaterThanOrEqualToThreshold: "≥", GreaterThanThreshold: ">", LessThanThreshold: "<", LessThanOrEqualToThreshold: "≤",
  }[a.ComparisonOperator] || a.ComparisonOperator;
  const stat = a.ExtendedStatistic || a.Statistic;
  return `${stat} ${op} ${a.Threshold} for ${a.DatapointsToAlarm || a.EvaluationPeriods}/${a.EvaluationPeriods} × ${a.Period}s`;
}

function metricName(a) {
  if (!a.MetricName) return "composite";
  const dims = (a.Dimensions || []).map((d) => `${d.Name}=${dimensionLabel(d.Value)}`).join(", ");
  return h("span", h("b", a.MetricName), h("span.muted", ` ${a.Namespace}${dims ? ` · ${dims}` : ""}`));
}

function alarmRows(alarms) {
  return alarms.map((a) => h("tr",
    h("td.name", h("b", a.AlarmName), a.AlarmDescription ? h("div.muted", a.AlarmDescription) : null),
    h("td", badge(a.StateValue)),
    h("td", metricName(a)),
    h("td", condition(a)),
    h("td.reason", a.StateReason || ""),
    h("td.nowrap", { title: formatTime(a.StateUpdatedTimestamp) }, ago(a.StateUpdatedTimestamp))));
}

const ALARM_HEADERS = ["Alarm", "State", "Metric", "Condition", "Reason", "Since"];

function eventRows(events) {
  return events.map((e) => h("li",
    h("time", { title: formatTime(e.createdAt) }, formatTime(e.createdAt)),
    e.service ? h("a.svc", { href: `/dashboard/services/${encodeURIComponent(e.service)}` }, e.service) : null,
    h("span", e.message)));
}

/** Several series added up per timestamp. */
function sumSeries(series) {
  const total = new Map();
  for (const s of series) for (const [t, v] of s.points) total.set(t, (total.get(t) || 0) + v);
  return [...total.entries()].sort((a, b) => a[0] - b[0]);
}

// ---- overview ---------------------------------------------------------------------------------

/** The cluster at a glance: summary, services with sparklines, alarms, recent events. */
export async function overviewView(main) {
  const summary = h("div.summary");
  const services = h("div");
  const alarms = h("div");
  const events = h("ul.events");
  replace(main,
    summary,
    section("Services", services),
    h("div.columns",
      section("Alarms", alarms),
      section("Recent events", events)));

  async function refresh(ctx) {
    const [list, alarmList] = await Promise.all([api.services(ctx.cluster), describeAlarms().catch(() => [])]);
    if (!ctx.isCurrent()) return;
    // Traffic per service: requests/s and p99 latency over the window, from its target groups.
    const charts = [];
    const chartOf = new Map();
    for (const s of list) {
      const tgs = (s.loadBalancers || []).map((lb) => lb.targetGroupArn).filter(Boolean).map(targetGroupDimension);
      if (!tgs.length) continue;
      const dims = await Promise.all(tgs.map((tg) => targetGroupDimensions(tg).catch(() => [{ Name: "TargetGroup", Value: tg }])));
      const all = serviceCharts(ctx.cluster, s.serviceName, dims);
      chartOf.set(s.serviceName, charts.length);
      charts.push(all.find((c) => c.key === "traffic"), all.find((c) => c.key === "latency"), all.find((c) => c.key === "errors"));
    }
    const data = charts.length ? await fetchCharts(charts, ctx.window).catch(() => []) : [];
    if (!ctx.isCurrent()) return;
    const last = (d, label) => {
      const s = d && d.series.find((x) => !label || x.label.startsWith(label));
      return s && s.points.length ? s.points[s.points.length - 1][1] : undefined;
    };
    const sumLast = (d) => d && d.series.reduce((sum, s) => sum + (s.points.length ? s.points[s.points.length - 1][1] : 0), 0);

    const running = list.reduce((n, s) => n + s.runningCount, 0);
    const desired = list.reduce((n, s) => n + s.desiredCount, 0);
    const inAlarm = alarmList.filter((a) => a.StateValue === "ALARM").length;
    const deploying = list.filter((s) => (s.deployments || []).length > 1 || (s.deployments || []).some((d) => d.rolloutState === "IN_PROGRESS")).length;
    replace(summary,
      h("div.stat", h("span", "Services"), h("b", String(list.length))),
      h("div.stat", h("span", "Tasks running"), h(`b.${running < desired ? "warn" : "ok"}`, `${running}/${desired}`)),
      h("div.stat", h("span", "Deployments in progress"), h("b", String(deploying))),
      h(`div.stat${inAlarm ? ".alarm" : ""}`, h("span", "Alarms in ALARM"), h("b", `${inAlarm}/${alarmList.length}`)));

    replace(services, table(
      ["Service", "Status", "Tasks", "Deployment", "Task definition", "Requests/s", "", "p99", "5xx/s"],
      list.map((s) => {
        const i = chartOf.get(s.serviceName);
        const traffic = i === undefined ? null : data[i];
        const spark = h("canvas.spark", { width: 120, height: 28 });
        if (traffic) sparkline(spark, sumSeries(traffic.series));
        return h("tr", { dataset: { service: s.serviceName } },
          h("td", h("a.service-link", { href: `/dashboard/services/${encodeURIComponent(s.serviceName)}` }, s.serviceName)),
          h("td", badge(s.status)),
          h("td", tasksCell(s)),
          h("td", rollout(s)),
          h("td.mono", taskDefName(s.taskDefinition)),
          h("td.num", traffic ? formatValue(sumLast(traffic), "/s") : h("span.muted", "no load balancer")),
          h("td", traffic ? spark : null),
          h("td.num", i === undefined ? "" : formatValue(last(data[i + 1], "p99"), "ms")),
          h("td.num", i === undefined ? "" : formatValue(last(data[i + 2], "5xx"), "/s")));
      }),
      `No services in cluster ${ctx.cluster}. Create one with \`berth apply\` or \`aws ecs create-service\`.`));

    const shown = alarmList.filter((a) => a.StateValue !== "OK").slice(0, 10);
    replace(alarms,
      shown.length ? table(["Alarm", "State", "Metric", "Condition", "Reason", "Since"], alarmRows(shown), "")
        : h("p.muted.empty", alarmList.length ? `All ${alarmList.length} alarms are OK.` : "No alarms defined."),
      alarmList.length ? h("p", h("a", { href: "/dashboard/alarms" }, "All alarms →")) : null);

    const merged = list.flatMap((s) => (s.events || []).map((e) => ({ ...e, service: s.serviceName })));
    merged.sort((a, b) => b.createdAt - a.createdAt);
    replace(events, merged.length ? eventRows(merged.slice(0, 25)) : h("li.muted", "No events yet."));
  }
  return { refresh };
}

// ---- one service ------------------------------------------------------------------------------

/** One service: its golden signals over the window, deployments, tasks, events and alarms. */
export async function serviceView(main, ctx) {
  const [name] = ctx.params;
  const head = h("div.service-head");
  const chartBoxes = {};
  const charts = {};
  const box = (key, title, hint) => {
    chartBoxes[key] = h("div", { dataset: { chart: key } });
    charts[key] = null;
    return h("section.card.chart-card", h("h3", title, hint ? h("span.muted.hint", hint) : null), chartBoxes[key]);
  };
  const scaling = h("section.card.chart-card.scaling", { id: "scaling-activities" },
    h("h3", "Auto scaling activities"),
    h("p.muted", "Scaling activities of this service will be listed here, next to its task count."));
  const deployments = h("div");
  const tasks = h("div");
  const events = h("ul.events");
  const alarms = h("div");
  replace(main,
    h("nav.crumbs", h("a", { href: "/dashboard/" }, ctx.cluster), " / ", h("span", name)),
    head,
    h("div.signals",
      box("latency", "Latency", "target response time"),
      box("traffic", "Traffic", "requests per second"),
      box("errors", "Errors", "responses per second"),
      box("saturation", "Saturation", "CPU and memory, % of reservation"),
      box("tasks", "Task count"),
      scaling),
    section("Deployments", deployments),
    section("Tasks", tasks),
    h("div.columns", section("Events", events), section("Alarms", alarms)));
  for (const key of Object.keys(chartBoxes)) {
    charts[key] = new TimeChart(chartBoxes[key], { unit: { latency: "ms", traffic: "/s", errors: "/s", saturation: "%", tasks: "" }[key] });
  }

  async function refresh(ctx) {
    const r = await api.ecs("DescribeServices", { cluster: ctx.cluster, services: [name] });
    const s = (r.services || [])[0];
    if (!s) {
      replace(head, h("div.error", `Service ${name} was not found in cluster ${ctx.cluster}.`));
      return;
    }
    const tgArns = (s.loadBalancers || []).map((lb) => lb.targetGroupArn).filter(Boolean);
    const tgs = tgArns.map(targetGroupDimension);
    const dims = await Promise.all(tgs.map((tg) => targetGroupDimensions(tg).catch(() => [{ Name: "TargetGroup", Value: tg }])));
    const specs = serviceCharts(ctx.cluster, name, dims).filter((c) => dims.length || !["latency", "traffic", "errors"].includes(c.key));
    const [data, history, taskList, alarmList] = await Promise.all([
      fetchCharts(specs, ctx.window),
      api.ecs("ListServiceDeployments", { cluster: ctx.cluster, service: name }).catch(() => ({ serviceDeployments: [] })),
      api.tasks(ctx.cluster, name),
      describeAlarms().catch(() => []),
    ]);
    if (!ctx.isCurrent()) return;
    specs.forEach((spec, i) => charts[spec.key].setData(data[i]));
    if (!dims.length) {
      for (const key of ["latency", "traffic", "errors"]) {
        charts[key].setData({ start: 0, end: 1, series: [] });
        charts[key].empty.textContent = "This service has no load balancer";
      }
    }

    const logGroup = `/berth/${ctx.cluster}/${name}`;
    replace(head,
      h("h1", name, " ", badge(s.status)),
      h("div.facts",
        h("span", "Tasks ", tasksCell(s)),
        h("span", "Task definition ", h("b.mono", taskDefName(s.taskDefinition))),
        h("span", "Deployment ", rollout(s)),
        h("span", "Strategy ", h("b", (s.deploymentConfiguration && s.deploymentConfiguration.strategy) || "ROLLING")),
        tgs.length ? h("span", "Target groups ", tgs.map((tg) => h("b.mono", `${tg.split("/")[1]} `))) : null,
        h("a", { href: `/dashboard/logs?group=${encodeURIComponent(logGroup)}` }, "Logs →")));

    // In-flight deployments from the service, the history from ListServiceDeployments.
    const hist = (history.serviceDeployments || []).slice().sort((a, b) => (b.createdAt || 0) - (a.createdAt || 0));
    const current = (s.deployments || []).map((d) => h("tr",
      h("td.mono", d.id), h("td", badge(d.status)), h("td", badge(d.rolloutState || "—")),
      h("td.mono", taskDefName(d.taskDefinition)),
      h("td", `${d.runningCount}/${d.desiredCount}${d.pendingCount ? ` (${d.pendingCount} pending)` : ""}${d.failedTasks ? `, ${d.failedTasks} failed` : ""}`),
      h("td.nowrap", formatTime(d.createdAt)),
      h("td.reason", d.rolloutStateReason || "")));
    const past = hist.slice(0, 15).map((d) => h("tr",
      h("td.mono", d.deploymentId || shortName(d.serviceDeploymentArn)), h("td", badge(d.status)), h("td", d.trigger || ""),
      h("td.mono", taskDefName(d.taskDefinition || d.targetServiceRevisionArn)),
      h("td", d.startedBy || ""),
      h("td.nowrap", formatTime(d.createdAt)),
      h("td.nowrap", d.finishedAt ? formatTime(d.finishedAt) : ""),
      h("td.reason", d.statusReason || "")));
    replace(deployments,
      h("h4", "Current"),
      table(["Deployment", "Status", "Rollout", "Task definition", "Tasks", "Created", "Reason"], current, "No deployments."),
      h("h4", "History"),
      table(["Deployment", "Status", "Trigger", "Task definition", "Started by", "Started", "Finished", "Reason"], past, "No deployment history."));

    const order = { RUNNING: 0, ACTIVATING: 1, PENDING: 1, PROVISIONING: 1, DEACTIVATING: 2, STOPPING: 2, DEPROVISIONING: 2, STOPPED: 3 };
    taskList.sort((a, b) => (order[a.lastStatus] ?? 2) - (order[b.lastStatus] ?? 2) || (b.createdAt || 0) - (a.createdAt || 0));
    replace(tasks, table(
      ["Task", "Status", "Desired", "Health", "Task definition", "Ports", "Started", "Stopped reason"],
      taskList.map((t) => h("tr", { dataset: { task: shortName(t.taskArn) } },
        h("td.mono", shortName(t.taskArn)),
        h("td", badge(t.lastStatus)),
        h("td", t.desiredStatus),
        h("td", badge(t.healthStatus || "UNKNOWN")),
        h("td.mono", taskDefName(t.taskDefinitionArn)),
        h("td.mono", (t.containers || []).flatMap((c) => (c.networkBindings || []).map((b) => `${b.hostPort}→${b.containerPort}`)).join(" ")),
        h("td.nowrap", t.startedAt ? ago(t.startedAt) : ""),
        h("td.reason", t.stoppedReason || ""))),
      "No tasks."));

    const evs = (s.events || []).slice(0, 30);
    replace(events, evs.length ? eventRows(evs) : h("li.muted", "No events yet."));
    const mine = alarmsOf(alarmList, name, tgs);
    replace(alarms, table(ALARM_HEADERS, alarmRows(mine), "No alarms on this service's metrics."));
  }
  return { refresh };
}

// ---- alarms -----------------------------------------------------------------------------------

/** Every alarm with its state, and the recent state changes. */
export async function alarmsView(main) {
  const list = h("div");
  const history = h("div");
  replace(main, section("Alarms", list), section("Recent state changes", history));
  async function refresh() {
    const [alarms, hist] = await Promise.all([
      describeAlarms(),
      api.cloudwatch("DescribeAlarmHistory", { HistoryItemType: "StateUpdate", MaxRecords: 30 }).catch(() => ({ AlarmHistoryItems: [] })),
    ]);
    replace(list, table(ALARM_HEADERS, alarmRows(alarms), "No alarms defined. Create one with `aws cloudwatch put-metric-alarm`."));
    replace(history, table(["Time", "Alarm", "Change"],
      (hist.AlarmHistoryItems || []).map((i) => h("tr",
        h("td.nowrap", formatTime(i.Timestamp)), h("td", h("b", i.AlarmName)), h("td", i.HistorySummary))),
      "No state changes yet."));
  }
  return { refresh };
}
