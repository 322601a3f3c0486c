// The log view: pick a log group, run a CloudWatch Logs Insights query (StartQuery, then
// GetQueryResults until it completes) or follow the group live (FilterLogEvents every 2 s).

import { h, replace, formatTime, badge } from "./dom.js";
import * as api from "./api.js";

const DEFAULT_QUERY = "fields @timestamp, @logStream, @message\n| sort @timestamp desc\n| limit 100";
/** How often the live tail polls, in milliseconds. */
const TAIL_MS = 2000;
/** Lines the live tail keeps. */
const TAIL_LINES = 1000;
/** How long a query is polled before giving up, in milliseconds. */
const QUERY_TIMEOUT_MS = 60000;

/** The log view. `?group=` preselects a log group, `?query=` runs an Insights query. */
export async function logsView(main, ctx) {
  const groups = h("select", { id: "log-group" });
  const query = h("textarea", { id: "insights-query", rows: 4, spellcheck: "false" }, DEFAULT_QUERY);
  const run = h("button.primary", { type: "button", id: "run-query" }, "Run query");
  const queryStatus = h("span.muted", { id: "query-status" });
  const results = h("div.results", { id: "query-results" });
  const filter = h("input", { id: "tail-filter", type: "text", placeholder: "filter pattern, e.g. ERROR -timeout" });
  const tailButton = h("button", { type: "button", id: "tail-toggle" }, "Start live tail");
  const tailStatus = h("span.muted");
  const tail = h("pre.tail", { id: "tail" });
  let tailTimer = null;
  let tailing = false;
  let queryRun = 0;
  let windowSeconds = ctx.window;

  replace(main,
    h("section.card",
      h("div.row", h("label", "Log group ", groups), h("span.muted", "Times cover the window chosen above.")),
    ),
    h("section.card",
      h("h2", "Logs Insights query"),
      query,
      h("div.row", run, queryStatus),
      results),
    h("section.card",
      h("h2", "Live tail"),
      h("div.row", filter, tailButton, tailStatus),
      tail));

  try {
    const r = await api.logs("DescribeLogGroups", {});
    const names = (r.logGroups || []).map((g) => g.logGroupName);
    const wanted = ctx.query.get("group");
    if (wanted && !names.includes(wanted)) names.unshift(wanted);
    replace(groups, names.length ? names.map((n) => h("option", { value: n, selected: n === wanted }, n)) : h("option", { value: "" }, "(no log groups yet)"));
  } catch (e) {
    replace(groups, h("option", { value: "" }, `(could not list log groups: ${e.message})`));
  }

  function windowMs() {
    const end = Date.now();
    return [end - windowSeconds * 1000, end];
  }

  run.addEventListener("click", async () => {
    const mine = ++queryRun;
    const group = groups.value;
    if (!group) {
      queryStatus.textContent = "Choose a log group first.";
      return;
    }
    const [start, end] = windowMs();
    replace(results);
    queryStatus.replaceChildren("Starting…");
    try {
      const started = await api.logs("StartQuery", {
        logGroupNames: [group],
        startTime: Math.floor(start / 1000),
        endTime: Math.ceil(end / 1000),
        queryString: query.value,
        limit: 1000,
      });
      const deadline = Date.now() + QUERY_TIMEOUT_MS;
      for (;;) {
        if (mine !== queryRun) return;
        const r = await api.logs("GetQueryResults", { queryId: started.queryId });
        const st = r.statistics || {};
        queryStatus.replaceChildren(badge(r.status),
          ` ${(r.results || []).length} rows, ${st.recordsMatched ?? "?"} matched of ${st.recordsScanned ?? "?"} scanned`);
        showResults(results, r.results || []);
        if (!["Scheduled", "Running"].includes(r.status)) break;
        if (Date.now() > deadline) {
          queryStatus.append(" — gave up waiting");
          break;
        }
        await new Promise((ok) => setTimeout(ok, 500));
      }
    } catch (e) {
      if (mine === queryRun) queryStatus.replaceChildren(h("span.error-text", e.message));
    }
  });

  const seen = new Set();
  let since = 0;
  async function pollTail() {
    const group = groups.value;
    if (!group) return;
    try {
      const r = await api.logs("FilterLogEvents", {
        logGroupName: group,
        startTime: since || windowMs()[0],
        filterPattern: filter.value,
        limit: 1000,
      });
      const fresh = (r.events || []).filter((e) => !seen.has(`${e.logStreamName}|${e.timestamp}|${e.message}`));
      for (const e of fresh) {
        if (e.timestamp > since) {
          since = e.timestamp;
          seen.clear();
        }
      }
      for (const e of r.events || []) if (e.timestamp === since) seen.add(`${e.logStreamName}|${e.timestamp}|${e.message}`);
      const atBottom = tail.scrollTop + tail.clientHeight >= tail.scrollHeight - 4;
      for (const e of fresh) {
        tail.append(h("div.line",
          h("time", formatTime(e.timestamp / 1000)), " ",
          h("span.stream", e.logStreamName.split("/").pop().slice(0, 12)), " ",
          e.message));
      }
      while (tail.childNodes.length > TAIL_LINES) tail.firstChild.remove();
      if (atBottom) tail.scrollTop = tail.scrollHeight;
      tailStatus.textContent = `following ${group} — ${tail.childNodes.length} lines`;
    } catch (e) {
      tailStatus.replaceChildren(h("span.error-text", e.message));
    }
  }

  function stopTail() {
    tailing = false;
    if (tailTimer) clearTimeout(tailTimer);
    tailTimer = null;
    tailButton.textContent = "Start live tail";
  }

  async function loop() {
    if (!tailing) return;
    await pollTail();
    if (tailing) tailTimer = setTimeout(loop, TAIL_MS);
  }

  tailButton.addEventListener("click", () => {
    if (tailing) {
      stopTail();
      return;
    }
    tailing = true;
    since = 0;
    seen.clear();
    replace(tail);
    tailButton.textContent = "Stop live tail";
    loop();
  });
  const restart = () => {
    if (tailing) {
      stopTail();
      tailButton.click();
    }
  };
  groups.addEventListener("change", restart);
  filter.addEventListener("change", restart);
  // Follow the chosen group right away; `?query=` (with a group) runs that query too.
  if (groups.value) tailButton.click();
  if (ctx.query.get("query")) {
    query.value = ctx.query.get("query");
    run.click();
  }

  return {
    async refresh(c) {
      windowSeconds = c.window;
    },
    unmount() {
      stopTail();
      queryRun++;
    },
  };
}

/** Insights results ([[{field, value}]]) as a table; `@ptr` columns left out. */
export function showResults(el, rows) {
  const fields = [];
  for (const row of rows) for (const { field } of row) if (!field.startsWith("@ptr") && !fields.includes(field)) fields.push(field);
  if (!rows.length) {
    replace(el, h("p.muted.empty", "No results."));
    return;
  }
  replace(el, h("table",
    h("thead", h("tr", fields.map((f) => h("th", f)))),
    h("tbody", rows.map((row) => {
      const m = Object.fromEntries(row.map((c) => [c.field, c.value]));
      return h("tr", fields.map((f) => h(f === "@message" ? "td.message" : "td.nowrap", m[f] ?? "")));
    }))));
}
