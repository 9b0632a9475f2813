// The Bianmin dashboard script, served at /dashboard/dashboard.js by
// engine/service/src/http/dashboard.rs. It reads the projections' JSON API with the viewer's
// credentials (a bearer token, or the dev actor header) and renders the headline rates, a
// grouped table, the department ranking, the overdue and due-soon lists and the projection lag.
// Every value from the server is set as text (never as markup).
"use strict";

// BEGIN API: every call the page makes. `{name}` is filled, URI-encoded, from the form.
const API = {
  session: "/dashboard/session",
  headline: "/api/v1/stats?period={period}&from={key}&to={key}",
  groups: "/api/v1/stats?period={period}&from={key}&to={key}&group_by={group}",
  ranking: "/api/v1/rankings/departments?month={month}&w1={w1}&w2={w2}&w3={w3}&limit={limit}",
  overdue: "/api/v1/overdue?limit={limit}",
  dueSoon: "/api/v1/due-soon?within_hours=24&limit={limit}",
  health: "/api/v1/health/projections",
};
// Filters appended as `&key=value` to the stats and list calls when set.
const FILTER_KEYS = ["street", "community", "department", "channel"];
// Rows per page of the lists and the ranking; "more" appends `&cursor=<next_cursor>`.
const PAGE_SIZE = 20;
// END API

const REFRESH_MS = 30000;
const STORE_TOKEN = "bianmin.dashboard.token";
const STORE_ACTOR = "bianmin.dashboard.actor";

// Each rate with the counts it is computed from (docs/metrics.md, "Rates").
const RATES = [
  { key: "response_rate", zh: "响应率", en: "Response rate",
    num: (c) => c.responded_on_time, den: (c) => c.response_due },
  { key: "on_time_completion_rate", zh: "按时办结率", en: "On-time completion",
    num: (c) => c.completed_on_time, den: (c) => c.due },
  { key: "resolution_rate", zh: "解决率", en: "Resolution",
    num: (c) => c.resolved, den: (c) => c.rated },
  { key: "satisfaction_rate", zh: "满意率", en: "Satisfaction",
    num: (c) => c.satisfied + c.basically_satisfied, den: (c) => c.satisfaction_rated },
  { key: "strict_satisfaction_rate", zh: "严格满意率", en: "Strict satisfaction",
    num: (c) => c.satisfied, den: (c) => c.satisfaction_rated },
  { key: "reopen_rate", zh: "重办率", en: "Reopen rate",
    num: (c) => c.reopened, den: (c) => c.completed },
  { key: "referral_return_rate", zh: "退单率", en: "Referral return rate",
    num: (c) => c.returned, den: (c) => c.referred },
];

// The counts of a stats row (projections::query::Counts).
const COUNT_KEYS = [
  "received", "accepted", "response_due", "responded_on_time", "due", "completed",
  "completed_on_time", "rated", "resolved", "satisfaction_rated", "satisfied",
  "basically_satisfied", "dissatisfied", "reopened", "referred", "returned",
];

const STAGES = {
  received: "已登记", accepted: "已受理", declined: "不予受理", classified: "已分类",
  direct_handling: "直接办理", proxy_handling: "代办", referred: "已派单", signed_for: "已签收",
  return_requested: "申请退单", contacted: "已联系", in_progress: "办理中",
  extension_pending: "延期审批中", termination_pending: "终止审批中", replied: "已答复",
  awaiting_callback: "待回访", rated: "已评价", reopened: "重办", archived: "已归档",
};

const ROLES = {
  dashboard: "看板", supervisor: "督办", auditor: "审计", station_worker: "站点工作人员",
  department_handler: "部门承办人", higher_level: "上级", intake_system: "受理系统", system: "系统",
};

const state = {
  session: null,
  timer: null,
  refreshing: false,
  cursors: { ranking: null, overdue: null, dueSoon: null },
  urls: { ranking: null, overdue: null, dueSoon: null },
};

// ---------- helpers ----------

const $ = (id) => document.getElementById(id);

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (k === "class") node.className = v;
    else node.setAttribute(k, v);
  }
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function bilingual(zh, en) {
  return [zh + " ", el("span", { lang: "en" }, en)];
}

function pad(n) {
  return String(n).padStart(2, "0");
}

function fill(template, vars) {
  return template.replace(/\{(\w+)\}/g, (_, name) =>
    encodeURIComponent(String(vars[name] === undefined ? "" : vars[name])));
}

function withParams(url, params) {
  let out = url;
  for (const [k, v] of Object.entries(params)) {
    if (v === undefined || v === null || v === "") continue;
    out += (out.includes("?") ? "&" : "?") + encodeURIComponent(k) + "=" + encodeURIComponent(v);
  }
  return out;
}

function percent(x) {
  return x === null || x === undefined ? "—" : (x * 100).toFixed(1) + "%";
}

function duration(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const h = seconds / 3600;
  return h >= 48 ? (h / 24).toFixed(1) + " 天 d" : h.toFixed(1) + " 小时 h";
}

const timeFormat = new Intl.DateTimeFormat("zh-CN", {
  timeZone: "Asia/Shanghai", month: "2-digit", day: "2-digit",
  hour: "2-digit", minute: "2-digit", hour12: false,
});

function when(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : timeFormat.format(d);
}

// The current period key in Asia/Shanghai (UTC+8), as the read models cut periods.
function periodKey(grain, now) {
  const d = new Date(now.getTime() + 8 * 3600 * 1000);
  const y = d.getUTCFullYear();
  const m = d.getUTCMonth();
  if (grain === "day") return `${y}-${pad(m + 1)}-${pad(d.getUTCDate())}`;
  if (grain === "month") return `${y}-${pad(m + 1)}`;
  const t = new Date(Date.UTC(y, m, d.getUTCDate()));
  const dow = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - dow);
  const wy = t.getUTCFullYear();
  const week = Math.ceil(((t.getTime() - Date.UTC(wy, 0, 1)) / 86400000 + 1) / 7);
  return `${wy}-W${pad(week)}`;
}

const INPUT_TYPE = { day: "date", week: "week", month: "month" };

// ---------- credentials and requests ----------

class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

function authHeaders() {
  const headers = { Accept: "application/json" };
  const token = sessionStorage.getItem(STORE_TOKEN);
  const actor = sessionStorage.getItem(STORE_ACTOR);
  if (token) headers.Authorization = "Bearer " + token;
  else if (actor) headers["X-Bianmin-Actor"] = actor;
  return headers;
}

async function getJson(url) {
  let response;
  try {
    response = await fetch(url, { headers: authHeaders(), cache: "no-store", credentials: "omit" });
  } catch (_) {
    throw new ApiError(0, "network", "服务器无法访问 Server unreachable");
  }
  let body = null;
  try {
    body = await response.json();
  } catch (_) {
    body = null;
  }
  if (!response.ok) {
    const message = body && typeof body.message === "string" ? body.message : response.statusText;
    throw new ApiError(response.status, body && body.code ? body.code : "", message);
  }
  return body;
}

function describe(error) {
  if (!(error instanceof ApiError)) return "加载失败 Failed to load: " + String(error);
  if (error.status === 401) {
    return "需要登录：令牌缺失或无效。Sign-in required: the token is missing or unknown.";
  }
  if (error.status === 403) {
    return "无权查看（当前角色不可读取此数据）。Not permitted for your role: " + error.message;
  }
  if (error.status === 0) return error.message;
  return `加载失败 Failed to load (${error.status}): ${error.message}`;
}

function showAlert(text) {
  const alert = $("alert");
  alert.textContent = text;
  alert.hidden = !text;
}

function setMsg(id, text, isError) {
  const node = $(id);
  node.textContent = text || "";
  node.classList.toggle("error", Boolean(isError));
}

// A failure of any call: 401 ends the session; anything else is shown in its section.
function failed(msgId, error) {
  if (error instanceof ApiError && error.status === 401) {
    signOut(describe(error));
    return;
  }
  setMsg(msgId, describe(error), true);
}

// ---------- sign-in ----------

function showSignIn(message) {
  $("board").hidden = true;
  $("signin").hidden = false;
  $("sign-out").hidden = true;
  $("identity").replaceChildren(...bilingual("未登录", "Not signed in"));
  $("dev-row").hidden = document.body.dataset.devIdentity !== "true";
  showAlert(message || "");
}

function signOut(message) {
  sessionStorage.removeItem(STORE_TOKEN);
  sessionStorage.removeItem(STORE_ACTOR);
  state.session = null;
  if (state.timer) clearTimeout(state.timer);
  state.timer = null;
  showSignIn(message);
}

async function startSession() {
  let session;
  try {
    session = await getJson(API.session);
  } catch (error) {
    signOut(describe(error));
    return;
  }
  state.session = session;
  const role = ROLES[session.role] ? ROLES[session.role] + " " : "";
  const parts = [session.id, role + session.role];
  if (session.unit) parts.push(session.unit);
  $("identity").textContent = "当前身份 Signed in as: " + parts.join(" · ");
  $("sign-out").hidden = false;
  $("signin").hidden = true;
  $("board").hidden = false;
  showAlert("");
  await refresh();
}

// ---------- filters ----------

function filters() {
  const out = {};
  for (const key of FILTER_KEYS) out[key] = $("f-" + key).value.trim();
  return out;
}

// The list filters: the form's, with what the read rule requires of this identity on top.
function listFilters() {
  const forced = (state.session && state.session.list_filter) || {};
  return Object.assign(filters(), forced);
}

function scopeText(params) {
  const set = Object.entries(params).filter(([, v]) => v);
  return set.length ? "（" + set.map(([k, v]) => `${k}=${v}`).join(", ") + "）" : "";
}

// ---------- sections ----------

// One row of the stats: the single period row, or the sum of several (rates then recomputed).
function total(items) {
  if (items.length === 1) return items[0];
  const counts = {};
  for (const k of COUNT_KEYS) counts[k] = 0;
  for (const row of items) {
    for (const [k, v] of Object.entries(row.counts)) counts[k] = (counts[k] || 0) + v;
  }
  const rates = {};
  for (const r of RATES) {
    const den = r.den(counts);
    rates[r.key] = den > 0 ? r.num(counts) / den : null;
  }
  rates.handling_p50_seconds = null;
  rates.handling_p90_seconds = null;
  return { counts, rates };
}

function rateCell(rate, row) {
  const c = row.counts || {};
  return [
    el("span", { class: "rate" }, percent(row.rates[rate.key])),
    " ",
    el("span", { class: "count", title: "分子 / 分母 numerator / denominator" },
      `${rate.num(c) || 0} / ${rate.den(c) || 0}`),
  ];
}

async function loadHeadline() {
  const grain = $("grain").value;
  const key = $("period-key").value;
  const url = withParams(fill(API.headline, { period: grain, key }), filters());
  $("headline-scope").textContent = `${key} ${scopeText(filters())}`;
  try {
    const body = await getJson(url);
    const items = body.items || [];
    const row = total(items);
    setMsg("headline-msg", items.length ? "" : "本期无工单。No requests in this period.");
    const c = row.counts || {};
    const cards = RATES.map((rate) =>
      el("div", { class: "card" }, el("dt", {}, ...bilingual(rate.zh, rate.en)),
        el("dd", {}, ...rateCell(rate, row))));
    cards.unshift(
      el("div", { class: "card volume" }, el("dt", {}, ...bilingual("受理 / 办结", "Received / completed")),
        el("dd", {}, el("span", { class: "rate" }, `${c.received || 0} / ${c.completed || 0}`))),
    );
    cards.push(
      el("div", { class: "card volume" }, el("dt", {}, ...bilingual("办理时长 P50 / P90", "Handling time")),
        el("dd", {}, el("span", { class: "rate small" },
          `${duration(row.rates.handling_p50_seconds)} / ${duration(row.rates.handling_p90_seconds)}`))),
    );
    $("headline").replaceChildren(...cards);
  } catch (error) {
    $("headline").replaceChildren();
    failed("headline-msg", error);
  }
}

async function loadGroups() {
  const grain = $("grain").value;
  const key = $("period-key").value;
  const group = $("group-by").value;
  const url = withParams(fill(API.groups, { period: grain, key, group }), filters());
  $("groups-dim").textContent = $("group-by").selectedOptions[0].textContent;
  const tbody = $("groups").tBodies[0];
  try {
    const body = await getJson(url);
    const items = body.items || [];
    setMsg("groups-msg", items.length ? "" : "本期无工单。No requests in this period.");
    tbody.replaceChildren(...items.map((row) => {
      const value = row.dims ? row.dims[group] : null;
      return el("tr", {},
        el("th", { scope: "row" }, value || "（未定）(none)"),
        el("td", { class: "num" }, row.counts.received),
        ...RATES.map((rate) => el("td", { class: "num" }, ...rateCell(rate, row))));
    }));
  } catch (error) {
    tbody.replaceChildren();
    failed("groups-msg", error);
  }
}

function rankingRow(d) {
  const bottomUp = d.bottom_up_avg === null || d.bottom_up_avg === undefined
    ? "—" : `${d.bottom_up_avg.toFixed(2)} (${d.bottom_up_count})`;
  return el("tr", {},
    el("td", { class: "num" }, d.rank),
    el("th", { scope: "row" }, d.department),
    el("td", { class: "num strong" }, d.composite === null || d.composite === undefined ? "—" : d.composite.toFixed(1)),
    el("td", { class: "num" }, ...rateCell(RATES[0], d)),
    el("td", { class: "num" }, ...rateCell(RATES[2], d)),
    el("td", { class: "num" }, ...rateCell(RATES[3], d)),
    el("td", { class: "num" }, ...rateCell(RATES[1], d)),
    el("td", { class: "num" }, el("span", { class: "rate" }, percent(d.return_rate)), " ",
      el("span", { class: "count" }, `${d.referrals_returned} / ${d.referrals}`)),
    el("td", { class: "num" }, bottomUp),
    el("td", { class: "num" }, `${d.whistles_reported} / ${d.whistles}`));
}

function listRow(r) {
  return el("tr", { class: r.overdue ? "late" : "" },
    el("th", { scope: "row" }, el("code", {}, r.request_id)),
    el("td", {}, (STAGES[r.stage] ? STAGES[r.stage] + " " : "") + r.stage),
    el("td", {}, r.category || "—"),
    el("td", {}, r.community),
    el("td", {}, r.lead_department || "—"),
    el("td", {}, when(r.due_at)),
    el("td", {}, r.escalation_level || "—"));
}

// Loads the first page (append = false) or the next one (append = true) of a paged section.
async function loadPaged(name, tableId, msgId, moreId, render, append) {
  const tbody = $(tableId).tBodies[0];
  const more = $(moreId);
  if (append && !state.cursors[name]) return;
  const url = append ? withParams(state.urls[name], { cursor: state.cursors[name] }) : state.urls[name];
  try {
    const body = await getJson(url);
    const rows = (body.items || []).map(render);
    if (append) tbody.append(...rows);
    else tbody.replaceChildren(...rows);
    state.cursors[name] = body.next_cursor || null;
    more.hidden = !state.cursors[name];
    if (!append) setMsg(msgId, rows.length ? "" : "暂无。None.");
  } catch (error) {
    if (!append) tbody.replaceChildren();
    more.hidden = true;
    failed(msgId, error);
  }
}

async function loadRanking(append) {
  if (!append) {
    state.urls.ranking = fill(API.ranking, {
      month: $("rank-month").value, w1: $("w1").value, w2: $("w2").value, w3: $("w3").value,
      limit: PAGE_SIZE,
    });
  }
  await loadPaged("ranking", "ranking", "ranking-msg", "ranking-more", rankingRow, append);
}

async function loadList(name, tableId, append) {
  const msgId = tableId + "-msg";
  const scope = $(tableId + "-scope");
  if (!state.session || state.session.list_filter === null) {
    $(tableId).tBodies[0].replaceChildren();
    $(tableId + "-more").hidden = true;
    scope.textContent = "";
    setMsg(msgId, "当前角色只能查看汇总数据，不能查看工单清单。Your role reads aggregates only; request lists are not available.", true);
    return;
  }
  if (!append) {
    const params = listFilters();
    scope.textContent = scopeText(params);
    state.urls[name] = withParams(fill(API[name], { limit: PAGE_SIZE }), params);
  }
  await loadPaged(name, tableId, msgId, tableId + "-more", listRow, append);
}

async function loadHealth() {
  const lag = $("lag");
  try {
    const body = await getJson(API.health);
    const projectors = body.projectors || [];
    const parts = projectors.map((p) =>
      `${p.projector}: ${p.lag_events} 条 events / ${Number(p.lag_seconds).toFixed(1)} s` +
      (p.last_error ? ` ⚠ ${p.last_error}` : ""));
    lag.replaceChildren(...bilingual("投影延迟", "Projection lag"), ": " + (parts.join("; ") || "—"));
    lag.classList.toggle("error", body.status !== "ok");
  } catch (error) {
    lag.replaceChildren(...bilingual("投影延迟", "Projection lag"), ": " + describe(error));
    lag.classList.add("error");
  }
}

async function refresh() {
  if (!state.session || state.refreshing) return;
  state.refreshing = true;
  if (state.timer) clearTimeout(state.timer);
  try {
    await Promise.allSettled([
      loadHeadline(),
      loadGroups(),
      loadRanking(false),
      loadList("overdue", "overdue", false),
      loadList("dueSoon", "due-soon", false),
      loadHealth(),
    ]);
  } finally {
    state.refreshing = false;
  }
  if (!state.session) return;
  $("updated").replaceChildren(...bilingual("更新于", "Updated"),
    " " + timeFormat.format(new Date()) + " · ", ...bilingual("每30秒自动刷新", "auto-refresh every 30 s"));
  state.timer = setTimeout(refresh, REFRESH_MS);
}

// ---------- wiring ----------

function setGrain(grain) {
  const input = $("period-key");
  input.type = INPUT_TYPE[grain] || "text";
  input.value = periodKey(grain, new Date());
}

document.addEventListener("DOMContentLoaded", () => {
  setGrain($("grain").value);
  $("rank-month").value = periodKey("month", new Date());

  $("grain").addEventListener("change", () => {
    setGrain($("grain").value);
    refresh();
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  $("group-by").addEventListener("change", () => loadGroups());
  $("ranking-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadRanking(false);
  });
  $("ranking-more").addEventListener("click", () => loadRanking(true));
  $("overdue-more").addEventListener("click", () => loadList("overdue", "overdue", true));
  $("due-soon-more").addEventListener("click", () => loadList("dueSoon", "due-soon", true));
  $("sign-out").addEventListener("click", () => signOut(""));

  $("signin-form").addEventListener("submit", (event) => {
    event.preventDefault();
    const token = $("token").value.trim();
    const actor = $("actor").value.trim();
    if (!token && !(actor && document.body.dataset.devIdentity === "true")) {
      showAlert("请输入访问令牌。Enter a bearer token.");
      return;
    }
    sessionStorage.removeItem(STORE_TOKEN);
    sessionStorage.removeItem(STORE_ACTOR);
    if (token) sessionStorage.setItem(STORE_TOKEN, token);
    else sessionStorage.setItem(STORE_ACTOR, actor);
    $("token").value = "";
    startSession();
  });

  if (sessionStorage.getItem(STORE_TOKEN) || sessionStorage.getItem(STORE_ACTOR)) startSession();
  else showSignIn("");
});
