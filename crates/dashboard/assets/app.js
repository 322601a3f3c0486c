// The dashboard's shell: routes by path under /dashboard, keeps the chosen cluster and time
// window (in the URL's query), refreshes the current view every few seconds while "Live" is on,
// and shows the server's status in the bar under the header.

import { h, replace, formatDuration } from "./dom.js";
import * as api from "./api.js";
import { overviewView, serviceView, alarmsView } from "./views.js";
import { logsView } from "./logs.js";
import { dashboardsView, dashboardView } from "./dashboards.js";
import { selftestView } from "./selftest.js";

/** How often the current view refreshes while live, in milliseconds. */
const REFRESH_MS = 3000;

const state = {
  cluster: "default",
  window: 300,
  live: true,
  view: null,
  params: [],
  busy: false,
  generation: 0,
};

const ROUTES = [
  [/^\/dashboard\/?$/, "overview", () => overviewView],
  [/^\/dashboard\/services\/([^/]+)\/?$/, "overview", () => serviceView],
  [/^\/dashboard\/alarms\/?$/, "alarms", () => alarmsView],
  [/^\/dashboard\/logs\/?$/, "logs", () => logsView],
  [/^\/dashboard\/dashboards\/?$/, "dashboards", () => dashboardsView],
  [/^\/dashboard\/dashboards\/([^/]+)\/?$/, "dashboards", () => dashboardView],
  [/^\/dashboard\/selftest\/?$/, "", () => selftestView],
];

function readQuery() {
  const q = new URLSearchParams(location.search);
  if (q.get("cluster")) state.cluster = q.get("cluster");
  const w = Number(q.get("window"));
  if ([300, 3600, 86400].includes(w)) state.window = w;
  if (q.get("live") === "0") state.live = false;
}

function writeQuery() {
  const q = new URLSearchParams(location.search);
  q.set("cluster", state.cluster);
  q.set("window", String(state.window));
  if (state.live) q.delete("live");
  else q.set("live", "0");
  history.replaceState(null, "", `${location.pathname}?${q}`);
}

/** Navigates to a dashboard path, keeping cluster and window. */
export function navigate(path) {
  const [p, extra] = path.split("?");
  const q = new URLSearchParams(extra || "");
  q.set("cluster", state.cluster);
  q.set("window", String(state.window));
  if (!state.live) q.set("live", "0");
  history.pushState(null, "", `${p}?${q}`);
  route();
}

/** The context views get: the cluster, the window, the route's parameters, navigation. */
function context(params) {
  return {
    cluster: state.cluster,
    window: state.window,
    params,
    query: new URLSearchParams(location.search),
    navigate,
    isCurrent: ((g) => () => g === state.generation)(state.generation),
  };
}

function showError(main, e) {
  let box = main.querySelector(":scope > .view-error");
  if (!e) {
    if (box) box.remove();
    return;
  }
  if (!box) {
    box = h("div.view-error.error");
    main.prepend(box);
  }
  box.textContent = `Could not load: ${e.message}`;
}

async function route() {
  state.generation += 1;
  if (state.view && state.view.unmount) state.view.unmount();
  state.view = null;
  const main = document.getElementById("main");
  let match = null;
  for (const [re, tab, view] of ROUTES) {
    const m = location.pathname.match(re);
    if (m) {
      match = { tab, view: view(), params: m.slice(1).map(decodeURIComponent) };
      break;
    }
  }
  for (const a of document.querySelectorAll("#tabs a")) a.classList.toggle("on", !!match && a.dataset.tab === match.tab);
  if (!match) {
    replace(main, h("div.card", h("h2", "Not found"), h("p", `Nothing at ${location.pathname}. `, h("a", { href: "/dashboard/" }, "Back to the overview"))));
    return;
  }
  replace(main, h("p.muted", "Loading…"));
  const ctx = context(match.params);
  try {
    const view = await match.view(main, ctx);
    if (!ctx.isCurrent()) {
      if (view && view.unmount) view.unmount();
      return;
    }
    state.view = view;
    state.params = match.params;
    await refreshView();
  } catch (e) {
    if (ctx.isCurrent()) showError(main, e);
  }
}

async function refreshView() {
  const view = state.view;
  if (!view || !view.refresh || state.busy) return;
  state.busy = true;
  const main = document.getElementById("main");
  try {
    await view.refresh(context(state.params));
    showError(main, null);
  } catch (e) {
    if (view === state.view) showError(main, e);
  } finally {
    state.busy = false;
  }
}

async function refreshStatus() {
  const bar = document.getElementById("statusbar");
  try {
    const s = await api.status();
    const agents = (s.components && s.components.agents) || [];
    const proxies = (s.components && s.components.proxies) || [];
    const healthy = agents.filter((a) => a.healthy).length;
    const listeners = (s.listeners || []).map((l) => l.bind || l.address || "").filter(Boolean);
    replace(bar,
      h("span", h("i.dot.ok"), "server ", h("b", `v${s.version ?? "?"}`), ` up ${formatDuration(s.uptimeSeconds || 0)}`),
      h("span", h(`i.dot.${healthy === agents.length && agents.length ? "ok" : "bad"}`), `agents ${healthy}/${agents.length} healthy`),
      h("span", `proxies ${Array.isArray(proxies) ? proxies.length : Object.keys(proxies).length}`),
      h("span", `${s.activeServices ?? 0} active services`),
      listeners.length ? h("span.muted", `listeners ${listeners.join(", ")}`) : null,
      h("span.muted.right", `API ${s.api || location.host}`));
    bar.classList.remove("down");
  } catch (e) {
    replace(bar, h("span", h("i.dot.bad"), `The berth server is not answering: ${e.message}`));
    bar.classList.add("down");
  }
}

async function loadClusters() {
  const select = document.getElementById("cluster");
  try {
    const arns = await api.all((b) => api.ecs("ListClusters", b), { maxResults: 100 }, "clusterArns", 5);
    const names = [...new Set([...arns.map((a) => a.slice(a.lastIndexOf("/") + 1)), state.cluster])].sort();
    replace(select, names.map((n) => h("option", { value: n, selected: n === state.cluster }, n)));
  } catch (e) {
    replace(select, h("option", { value: state.cluster }, state.cluster));
  }
  select.value = state.cluster;
}

function wireControls() {
  document.getElementById("cluster").addEventListener("change", (e) => {
    state.cluster = e.target.value;
    writeQuery();
    route();
  });
  const buttons = document.querySelectorAll("#window button");
  for (const b of buttons) {
    b.classList.toggle("on", Number(b.dataset.window) === state.window);
    b.addEventListener("click", () => {
      state.window = Number(b.dataset.window);
      for (const x of buttons) x.classList.toggle("on", x === b);
      writeQuery();
      refreshView();
    });
  }
  const live = document.getElementById("live");
  live.classList.toggle("on", state.live);
  live.addEventListener("click", () => {
    state.live = !state.live;
    live.classList.toggle("on", state.live);
    writeQuery();
  });
  document.addEventListener("click", (e) => {
    const a = e.target.closest && e.target.closest("a[href]");
    if (!a || e.defaultPrevented || e.button !== 0 || e.metaKey || e.ctrlKey || e.shiftKey || a.target) return;
    const url = new URL(a.href, location.href);
    if (url.origin !== location.origin || !url.pathname.startsWith("/dashboard")) return;
    e.preventDefault();
    navigate(url.pathname + url.search);
  });
  window.addEventListener("popstate", () => {
    readQuery();
    route();
  });
}

/** The sign-in form, shown when the server wants a credential. */
function showLogin(message) {
  const main = document.getElementById("main");
  const input = h("input", { type: "password", id: "token", autocomplete: "off", placeholder: "berth_…", size: 48 });
  const form = h("form.card", { id: "login" },
    h("h2", "Sign in"),
    h("p.muted", "Paste a berth token: the admin token `berth up` printed, or one from `berth auth create-token USER`."),
    input, " ", h("button", { type: "submit" }, "Sign in"),
    message ? h("p.error", message) : null);
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    try {
      await api.login(input.value.trim());
      location.reload();
    } catch (err) {
      showLogin(err.message);
    }
  });
  replace(main, form);
  input.focus();
}

/**
 * Signs in with a token in the URL's fragment (`#token=...`, never sent to the server in the
 * URL and removed from the address bar at once), then checks the session; false when the
 * sign-in form is shown instead.
 */
async function ensureSession(m) {
  if (m) {
    try {
      await api.login(decodeURIComponent(m[1]));
    } catch (e) {
      showLogin(e.message);
      return false;
    }
  }
  try {
    const me = await api.whoami();
    const who = document.getElementById("whoami");
    if (who && me.user) replace(who, `signed in as ${me.user} `, h("a", { href: "#", onclick: async (e) => { e.preventDefault(); await api.logout(); location.reload(); } }, "sign out"));
    return true;
  } catch (e) {
    if (e.status === 401 || e.status === 403) {
      showLogin(m ? `The server did not accept the session: ${e.message}` : undefined);
      return false;
    }
    throw e;
  }
}

let signedIn = false;
// Read (and drop from the address bar) a token in the fragment before anything rewrites the URL.
const fragmentToken = location.hash.match(/token=([^&]+)/);
if (fragmentToken) history.replaceState(null, "", location.pathname + location.search);
readQuery();
wireControls();
writeQuery();
ensureSession(fragmentToken).then((ok) => {
  signedIn = ok;
  if (!ok) return;
  loadClusters();
  refreshStatus();
  route();
}).catch((e) => showError(document.getElementById("main"), e));
setInterval(() => {
  if (!signedIn || !state.live || document.hidden) return;
  refreshStatus();
  refreshView();
}, REFRESH_MS);
