// Checks of the page's pure functions, run in the browser at /dashboard/selftest (the
// end-to-end test loads it in headless chromium and expects `data-failures="0"`).

import { h, replace, dimensionLabel, formatNumber, shortName } from "./dom.js";
import { niceStep } from "./chart.js";
import { validPeriod, periodFor, ratePerSecond, targetGroupDimension, widgetQueries } from "./metrics.js";
import { markdown } from "./dashboards.js";

function checks() {
  const out = [];
  const eq = (name, got, want) => {
    const ok = JSON.stringify(got) === JSON.stringify(want);
    out.push({ name, ok, detail: ok ? "" : `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}` });
  };
  eq("niceStep rounds up to 1-2-5", [niceStep(0.37), niceStep(7), niceStep(15), niceStep(0)], [0.5, 10, 20, 1]);
  eq("periods per window", [periodFor(300), periodFor(3600), periodFor(86400)], [5, 30, 600]);
  eq("a period valid for the store", [validPeriod(5, 300), validPeriod(30, 86400), validPeriod(1, 7200)], [5, 60, 8]);
  eq("rates fill missing periods with 0 and divide the running one by its seconds",
    ratePerSecond([[100, 10], [130, 30]], 100, 200, 10, 145), [[100, 1], [110, 0], [120, 0], [130, 3]]);
  eq("a running period under 10 s is left out", ratePerSecond([[100, 10]], 100, 200, 60, 105), []);
  eq("a running long period shows its rate so far", ratePerSecond([[100, 30]], 100, 800, 600, 120), [[100, 1.5]]);
  eq("no datapoints, no rate", ratePerSecond([], 0, 100, 5, 100), []);
  eq("target group dimension from its ARN",
    targetGroupDimension("arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/0123abcd"), "targetgroup/web/0123abcd");
  eq("dimension labels", [dimensionLabel("targetgroup/web/0123"), dimensionLabel("app/shop/99"), dimensionLabel("default")], ["web", "shop", "default"]);
  eq("short names", [shortName("arn:aws:ecs:r:1:service/default/web"), shortName("")], ["web", ""]);
  eq("numbers", [formatNumber(0), formatNumber(0.01234), formatNumber(123.4), formatNumber(12345), formatNumber(NaN)], ["0", "0.0123", "123", "12.3k", "–"]);

  const w = widgetQueries({
    stat: "Sum", period: 60,
    metrics: [
      ["AWS/ECS", "CPUUtilization", "ClusterName", "default", "ServiceName", "web"],
      [".", "MemoryUtilization", ".", ".", ".", ".", { stat: "Maximum", label: "mem" }],
      ["...", "api"],
      ["AWS/ECS", "CPUUtilization", { visible: false }],
      ["AWS/ECS", "CPUUtilization", "ClusterName"],
      [{ expression: "m1 * 2" }],
      "not a row",
    ],
  });
  eq("metric rows with '.', '...' and options",
    w.queries.map((q) => [q.metric.Namespace, q.metric.MetricName, q.metric.Dimensions.map((d) => d.Value).join(","), q.stat, q.period, q.label]),
    [
      ["AWS/ECS", "CPUUtilization", "default,web", "Sum", 60, "CPUUtilization default web"],
      ["AWS/ECS", "MemoryUtilization", "default,web", "Maximum", 60, "mem"],
      ["AWS/ECS", "MemoryUtilization", "default,api", "Sum", 60, "MemoryUtilization default api"],
    ]);
  eq("bad metric rows are reported", w.errors.map((e) => e.split(":")[0]), ["metrics[4]", "metrics[5]", "metrics[6]"]);

  const md = h("div", markdown("# Title\n\n- one\n- **two**\nsome `code` and [a link](//other.invalid/x) [home](/dashboard/)"));
  eq("markdown", [md.querySelector("h3")?.textContent, md.querySelectorAll("li").length, md.querySelector("li b")?.textContent,
    md.querySelector("p code")?.textContent, md.querySelectorAll("a").length, md.querySelector("a")?.getAttribute("href")],
  ["Title", 2, "two", "code", 1, "/dashboard/"]);
  return out;
}

/** The self-test page. */
export async function selftestView(main) {
  const results = checks();
  const failures = results.filter((r) => !r.ok).length;
  replace(main, h("section.card", { id: "selftest", dataset: { failures: String(failures), checks: String(results.length) } },
    h("h2", `Self-test: ${results.length - failures} of ${results.length} checks pass`),
    h("ul", results.map((r) => h("li", r.ok ? "✓ " : "✗ ", r.name, r.ok ? "" : h("span.error-text", ` — ${r.detail}`))))));
  return {};
}
