// Metric queries: the golden signals of a service (from its target groups and its ECS metrics),
// CloudWatch dashboard `metrics` arrays, and turning GetMetricData results into chart series.

import { cloudwatch } from "./api.js";
import { dimensionLabel } from "./dom.js";

/** The period (seconds) used for a time window: about 60-150 points per chart. */
export function periodFor(windowSeconds) {
  if (windowSeconds <= 300) return 5;
  if (windowSeconds <= 3600) return 30;
  if (windowSeconds <= 3 * 3600) return 60;
  return 600;
}

/**
 * A period berth's store can answer for a window: 1-second data is kept 3 hours, so a window
 * reaching further back needs a multiple of 60; and at most 1440 points per series.
 */
export function validPeriod(period, windowSeconds) {
  let p = Math.max(1, Math.round(period));
  if (windowSeconds > 3 * 3600 - 60) p = Math.max(60, Math.ceil(p / 60) * 60);
  while (windowSeconds / p > 1440) p *= 2;
  return p;
}

/** `targetgroup/<name>/<id>` from a target group ARN (CloudWatch's TargetGroup dimension). */
export function targetGroupDimension(arn) {
  const i = String(arn).indexOf(":targetgroup/");
  return i >= 0 ? arn.slice(i + 1) : String(arn);
}

const lbCache = new Map();

/**
 * The dimensions the proxy reports a target group's metrics under: TargetGroup plus the
 * LoadBalancer it serves (found with ListMetrics, cached once found).
 */
export async function targetGroupDimensions(tg) {
  if (lbCache.has(tg)) return lbCache.get(tg);
  const r = await cloudwatch("ListMetrics", {
    Namespace: "AWS/ApplicationELB",
    Dimensions: [{ Name: "TargetGroup", Value: tg }],
  });
  const withLb = (r.Metrics || []).map((m) => m.Dimensions || []).find((d) => d.some((x) => x.Name === "LoadBalancer"));
  const dims = withLb
    ? [{ Name: "TargetGroup", Value: tg }, { Name: "LoadBalancer", Value: withLb.find((x) => x.Name === "LoadBalancer").Value }]
    : [{ Name: "TargetGroup", Value: tg }];
  if (withLb) lbCache.set(tg, dims);
  return dims;
}

function metric(namespace, name, dims) {
  return { Namespace: namespace, MetricName: name, Dimensions: dims };
}

/**
 * The charts of a service's golden signals. `targets` are the target groups' dimension lists
 * (see targetGroupDimensions). Each chart: {key, title, unit, queries: [{metric, stat, label, kind}]},
 * kind "rate" (Sum per second, missing periods are 0), "ms" (seconds → ms) or "value".
 */
export function serviceCharts(cluster, serviceName, targets) {
  const ecsDims = [{ Name: "ClusterName", Value: cluster }, { Name: "ServiceName", Value: serviceName }];
  const elb = "AWS/ApplicationELB";
  const several = targets.length > 1;
  const suffix = (dims) => (several ? ` (${dims[0].Value.split("/")[1]})` : "");
  const perTarget = (fn) => targets.flatMap((dims) => fn(dims, suffix(dims)));
  const lbs = [...new Set(targets.map((d) => (d.find((x) => x.Name === "LoadBalancer") || {}).Value).filter(Boolean))];
  return [
    {
      key: "latency", title: "Latency", unit: "ms",
      queries: perTarget((dims, sfx) => ["p50", "p90", "p99"].map((stat) => ({
        metric: metric(elb, "TargetResponseTime", dims), stat, label: `${stat}${sfx}`, kind: "ms",
      }))),
    },
    {
      key: "traffic", title: "Traffic", unit: "/s",
      queries: perTarget((dims, sfx) => [{ metric: metric(elb, "RequestCount", dims), stat: "Sum", label: `requests${sfx}`, kind: "rate" }]),
    },
    {
      key: "errors", title: "Errors", unit: "/s",
      queries: [
        ...perTarget((dims, sfx) => [
          { metric: metric(elb, "HTTPCode_Target_5XX_Count", dims), stat: "Sum", label: `5xx${sfx}`, kind: "rate", color: "#e5534b" },
          { metric: metric(elb, "HTTPCode_Target_4XX_Count", dims), stat: "Sum", label: `4xx${sfx}`, kind: "rate", color: "#bf8700" },
        ]),
        ...lbs.map((lb) => ({
          metric: metric(elb, "HTTPCode_ELB_5XX_Count", [{ Name: "LoadBalancer", Value: lb }]), stat: "Sum",
          label: `load balancer 5xx${lbs.length > 1 ? ` (${lb.split("/")[1]})` : ""}`, kind: "rate", color: "#8250df",
        })),
      ],
    },
    {
      key: "saturation", title: "Saturation", unit: "%",
      queries: [
        { metric: metric("AWS/ECS", "CPUUtilization", ecsDims), stat: "Average", label: "CPU", kind: "value" },
        { metric: metric("AWS/ECS", "MemoryUtilization", ecsDims), stat: "Average", label: "memory", kind: "value" },
      ],
    },
    {
      key: "tasks", title: "Tasks", unit: "",
      queries: [
        { metric: metric("ECS/ContainerInsights", "RunningTaskCount", ecsDims), stat: "Average", label: "running", kind: "value", color: "#2da44e" },
        { metric: metric("ECS/ContainerInsights", "DesiredTaskCount", ecsDims), stat: "Average", label: "desired", kind: "value", color: "#6e7781" },
        { metric: metric("ECS/ContainerInsights", "PendingTaskCount", ecsDims), stat: "Average", label: "pending", kind: "value", color: "#bf8700" },
      ],
    },
  ];
}

/**
 * Counts per second. Counts are reported only when not zero, so periods without data count 0,
 * from the first datapoint on. Periods start at the query's StartTime (as GetMetricData's do),
 * at start + k × period; the period in progress is divided by the seconds it has run, and shown
 * once it has run 10 seconds (or whole, for shorter periods).
 */
export function ratePerSecond(points, start, end, period, now) {
  if (!points.length) return [];
  const byTime = new Map(points);
  const out = [];
  for (let t = points[0][0]; t < end; t += period) {
    const elapsed = Math.min(period, now - t);
    if (elapsed < Math.min(period, 10)) break;
    out.push([t, (byTime.get(t) || 0) / elapsed]);
  }
  return out;
}

/**
 * Runs every chart's queries in one GetMetricData call over the last `windowSeconds` and returns,
 * per chart, `{start, end, period, series}` for TimeChart. `period` overrides the window's.
 */
export async function fetchCharts(charts, windowSeconds, period) {
  const now = Date.now() / 1000;
  const end = Math.ceil(now);
  const start = end - windowSeconds;
  const defaultPeriod = validPeriod(period || periodFor(windowSeconds), windowSeconds);
  const queries = [];
  charts.forEach((chart, c) => chart.queries.forEach((q, i) => {
    const p = validPeriod(q.period || chart.period || defaultPeriod, windowSeconds);
    queries.push({
      Id: `c${c}q${i}`,
      Label: q.label,
      MetricStat: { Metric: q.metric, Period: p, Stat: q.stat },
      ReturnData: true,
    });
  }));
  const results = new Map();
  for (let i = 0; i < queries.length; i += 500) {
    const r = await cloudwatch("GetMetricData", {
      MetricDataQueries: queries.slice(i, i + 500),
      StartTime: start,
      EndTime: end,
      ScanBy: "TimestampAscending",
    });
    for (const res of r.MetricDataResults || []) results.set(res.Id, res);
  }
  return charts.map((chart, c) => {
    let chartPeriod = defaultPeriod;
    const series = chart.queries.map((q, i) => {
      const p = validPeriod(q.period || chart.period || defaultPeriod, windowSeconds);
      chartPeriod = p;
      const res = results.get(`c${c}q${i}`) || { Timestamps: [], Values: [] };
      let points = (res.Timestamps || []).map((t, j) => [Number(t), Number(res.Values[j])]);
      points.sort((a, b) => a[0] - b[0]);
      if (q.kind === "rate") points = ratePerSecond(points, start, end, p, now);
      if (q.kind === "ms") points = points.map(([t, v]) => [t, v * 1000]);
      return { label: q.label, color: q.color, points };
    });
    return { start, end, period: chartPeriod, series };
  });
}

/**
 * The queries of a dashboard metric widget's `properties.metrics` rows, CloudWatch's way:
 * `[Namespace, MetricName, dimName, dimValue, ..., {stat, period, label, color, visible}]`,
 * where "." repeats the previous row's value at that position and a leading "..." repeats the
 * previous row's leading values (the row's own values replace its last ones).
 * Returns {queries, errors}.
 */
export function widgetQueries(properties) {
  const rows = Array.isArray(properties.metrics) ? properties.metrics : [];
  const stat = properties.stat || "Average";
  const queries = [];
  const errors = [];
  let previous = [];
  rows.forEach((row, n) => {
    if (!Array.isArray(row)) {
      errors.push(`metrics[${n}]: an array was expected`);
      return;
    }
    let opts = {};
    let parts = row.slice();
    if (parts.length && typeof parts[parts.length - 1] === "object" && parts[parts.length - 1] !== null) opts = parts.pop();
    if (opts.expression) {
      errors.push(`metrics[${n}]: metric math (expression) is not supported by berth`);
      return;
    }
    if (parts[0] === "...") {
      const rest = parts.slice(1);
      parts = previous.slice(0, Math.max(0, previous.length - rest.length)).concat(rest);
    }
    parts = parts.map((p, i) => (p === "." ? previous[i] : p));
    previous = parts;
    if (parts.length < 2 || parts.length % 2 !== 0 || parts.some((p) => typeof p !== "string" || p === "")) {
      errors.push(`metrics[${n}]: [Namespace, MetricName, name, value, ...] was expected, found ${JSON.stringify(row)}`);
      return;
    }
    if (opts.visible === false) return;
    const dims = [];
    for (let i = 2; i < parts.length; i += 2) dims.push({ Name: parts[i], Value: parts[i + 1] });
    const label = opts.label || [parts[1], ...dims.map((d) => dimensionLabel(d.Value))].join(" ");
    queries.push({
      metric: metric(parts[0], parts[1], dims),
      stat: opts.stat || stat,
      period: opts.period || properties.period,
      label,
      color: opts.color,
      kind: "value",
    });
  });
  return { queries, errors };
}
