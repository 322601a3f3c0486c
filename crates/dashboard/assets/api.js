// The APIs the page reads, all on this origin and spoken exactly as the AWS CLI speaks them:
// ECS (awsJson 1.1), CloudWatch (awsJson 1.0), CloudWatch Logs (awsJson 1.1) and berth's status.

/** An API error with the AWS error code and message. */
export class ApiError extends Error {
  constructor(code, message, status) {
    super(`${code}: ${message}`);
    this.code = code;
    this.status = status;
  }
}

async function awsJson(target, contentType, body) {
  let resp;
  try {
    resp = await fetch("/", {
      method: "POST",
      headers: { "X-Amz-Target": target, "Content-Type": contentType },
      body: JSON.stringify(body || {}),
      cache: "no-store",
    });
  } catch (e) {
    throw new ApiError("NetworkError", `the berth server did not answer (${e.message})`, 0);
  }
  const text = await resp.text();
  let data = {};
  try {
    data = text ? JSON.parse(text) : {};
  } catch (e) {
    throw new ApiError("BadResponse", `${target}: expected JSON, got ${text.slice(0, 120)}`, resp.status);
  }
  if (!resp.ok) {
    const code = String(data.__type || `HTTP${resp.status}`).split("#").pop();
    throw new ApiError(code, data.message || data.Message || text, resp.status);
  }
  return data;
}

/** An ECS operation (`ListServices`, ...). */
export function ecs(op, body) {
  return awsJson(`AmazonEC2ContainerServiceV20141113.${op}`, "application/x-amz-json-1.1", body);
}

/** A CloudWatch operation (`GetMetricData`, ...); times are epoch seconds. */
export function cloudwatch(op, body) {
  return awsJson(`GraniteServiceVersion20100801.${op}`, "application/x-amz-json-1.0", body);
}

/** A CloudWatch Logs operation (`FilterLogEvents`, ...); times are epoch milliseconds. */
export function logs(op, body) {
  return awsJson(`Logs_20140328.${op}`, "application/x-amz-json-1.1", body);
}

/** `POST /berth/v1/login`: exchanges a bearer token for the session cookie. */
export async function login(token) {
  const resp = await fetch("/berth/v1/login", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ token }),
    cache: "no-store",
  });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(data.error || `HTTP${resp.status}`, data.message || "sign-in refused", resp.status);
  return data;
}

/** `POST /berth/v1/logout`: ends the session. */
export async function logout() {
  await fetch("/berth/v1/logout", { method: "POST", cache: "no-store" });
}

/** `GET /berth/v1/whoami`: the signed-in user ({user: null} when the server has no auth). */
export async function whoami() {
  const resp = await fetch("/berth/v1/whoami", { cache: "no-store" });
  const data = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new ApiError(data.error || `HTTP${resp.status}`, data.message || "", resp.status);
  return data;
}

/** `GET /berth/v1/status`. */
export async function status() {
  const resp = await fetch("/berth/v1/status", { cache: "no-store" });
  if (!resp.ok) throw new ApiError(`HTTP${resp.status}`, await resp.text(), resp.status);
  return resp.json();
}

/** Every page of a paginated operation, concatenating `key` (bounded to `maxPages`). */
export async function all(call, body, key, maxPages = 20) {
  const out = [];
  let token;
  for (let i = 0; i < maxPages; i++) {
    const page = await call({ ...body, ...(token ? { nextToken: token } : {}) });
    out.push(...(page[key] || []));
    token = page.nextToken;
    if (!token) break;
  }
  return out;
}

/** The cluster's services, described (DescribeServices takes at most 10 at a time). */
export async function services(cluster) {
  const arns = await all((b) => ecs("ListServices", b), { cluster, maxResults: 100 }, "serviceArns");
  const out = [];
  for (let i = 0; i < arns.length; i += 10) {
    const r = await ecs("DescribeServices", { cluster, services: arns.slice(i, i + 10) });
    out.push(...(r.services || []));
  }
  out.sort((a, b) => a.serviceName.localeCompare(b.serviceName));
  return out;
}

/** A service's tasks (running and recently stopped), described. */
export async function tasks(cluster, serviceName) {
  const arns = [];
  for (const desiredStatus of ["RUNNING", "STOPPED"]) {
    const list = await all((b) => ecs("ListTasks", b), { cluster, serviceName, desiredStatus, maxResults: 100 }, "taskArns", 2);
    arns.push(...list.slice(0, desiredStatus === "STOPPED" ? 20 : 100));
  }
  const out = [];
  for (let i = 0; i < arns.length; i += 100) {
    const r = await ecs("DescribeTasks", { cluster, tasks: arns.slice(i, i + 100) });
    out.push(...(r.tasks || []));
  }
  return out;
}
