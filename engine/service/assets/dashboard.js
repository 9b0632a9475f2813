// The Bianmin dashboard script, served at /dashboard/dashboard.js by
// engine/service/src/http/dashboard.rs. It reads the projections' JSON API with the viewer's
// credentials (a bearer token, or the dev actor header) and renders the headline rates, a
// grouped table, trend charts over weeks or months, the department ranking, the overdue and
// due-soon lists, a request's timeline (auditors, supervisors), the rate reports sent upward with
// their revisions and feedback, and the projection lag. Charts are
// inline SVG built here. Every value from the server is set as text (never as markup). Rendered
// figures carry `data-metric` / `data-count` attributes (and rows `data-group`, `data-period`,
// `data-department`, `data-request-id`) so that tests can read what is shown; the body's
// `data-state` becomes `ready` after each complete refresh.
//
// URL fragment (never sent to the server, so never in a log): `#date=2026-03-20` shows the
// periods around that day instead of today; `grain=day|week|month`, `trend=week|month`,
// `group=<dimension>`, `request=<id>` preset the form; `token=<bearer>` (or, only when the
// server runs with dev identity, `actor=<id;role[;unit]>`) signs in for this tab and is removed
// from the address bar at once.
"use strict";

// BEGIN API: every call the page makes. `{name}` is filled, URI-encoded, from the form.
const API = {
  session: "/dashboard/session",
  headline: "/api/v1/stats?period={period}&from={key}&to={key}",
  groups: "/api/v1/stats?period={period}&from={key}&to={key}&group_by={group}",
  ranking: "/api/v1/rankings/{unit}?month={month}&w1={w1}&w2={w2}&w3={w3}&w4={w4}&limit={limit}",
  overdue: "/api/v1/overdue?limit={limit}",
  dueSoon: "/api/v1/due-soon?within_hours=24&limit={limit}",
  health: "/api/v1/health/projections",
  trend: "/api/v1/stats?period={period}&from={from}&to={to}",
  timeline: "/api/v1/audit/requests/{id}/timeline",
  reports: "/api/v1/reports",
  map: "/api/v1/map",
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

// The trend chart's series: key in `rates`, label, colour.
const TREND_SERIES = [
  { key: "satisfaction_rate", zh: "满意率", en: "Satisfaction", color: "#b4232a" },
  { key: "on_time_completion_rate", zh: "按时办结率", en: "On-time completion", color: "#1f6feb" },
  { key: "response_rate", zh: "响应率", en: "Response", color: "#2e7d32" },
  { key: "resolution_rate", zh: "解决率", en: "Resolution", color: "#8a4b00" },
];
// How many periods the trend shows per grain.
const TREND_SPAN = { week: 8, month: 12 };

const EVENT_LABELS = {
  request_received: "登记", request_accepted: "受理", request_declined: "不予受理",
  request_classified: "分类", direct_handling_started: "直接办理", proxy_handling_started: "代办",
  referred_to_department: "派单", referral_signed_for: "签收", referral_returned: "退单",
  return_rejected: "退单驳回", resident_contacted: "联系居民", handling_started: "开始办理",
  progress_noted: "进展", assistance_reported: "协办反馈", extension_requested: "申请延期",
  extension_granted: "准予延期", extension_denied: "不准延期", clock_paused: "暂停计时",
  clock_resumed: "恢复计时", termination_requested: "申请终止", termination_approved: "准予终止",
  termination_denied: "不准终止", reported_upward: "上报", upward_feedback_received: "上级反馈",
  upward_acknowledged: "上级确认", result_replied: "答复", reply_reviewed: "审核",
  callback_attempted: "回访", rated: "评价", reopened: "重办", archived: "归档",
  reminder_sent: "催办", pre_breach_warned: "预警", deadline_missed: "超期", escalated: "升级督办",
  whistle_blown: "吹哨", department_reported: "部门报到", department_released: "部门撤离",
  department_rated: "部门评价", rating_appealed: "评价申诉", appeal_decided: "申诉裁定",
  event_corrected: "更正", contact_corrected: "更正联系方式",
};

const SVG_NS = "http://www.w3.org/2000/svg";

const state = {
  anchor: null,
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
  const callbacks = { reached: 0, timed: 0, on_time: 0 };
  for (const row of items) {
    for (const k of Object.keys(callbacks)) callbacks[k] += (row.callbacks || {})[k] || 0;
  }
  callbacks.callback_rate = counts.completed > 0 ? callbacks.reached / counts.completed : null;
  callbacks.callback_timeliness = callbacks.timed > 0 ? callbacks.on_time / callbacks.timed : null;
  return { counts, rates, callbacks };
}

// The callback card (回访率, 回访及时率; docs/metrics.md "Callbacks"), each with its counts.
function callbackCard(row) {
  const cb = row.callbacks || {};
  const c = row.counts || {};
  const figure = (key, num, den) => [
    el("span", { class: "rate", "data-metric": key }, percent(cb[key])),
    " ",
    el("span", { class: "count", "data-count": key, title: "分子 / 分母 numerator / denominator" },
      `${num || 0} / ${den || 0}`),
  ];
  return el("div", { class: "card" },
    el("dt", {}, ...bilingual("回访率 / 回访及时率", "Callback rate / timeliness")),
    el("dd", {}, ...figure("callback_rate", cb.reached, c.completed), el("br", {}),
      ...figure("callback_timeliness", cb.on_time, cb.timed)));
}

function rateCell(rate, row) {
  const c = row.counts || {};
  return [
    el("span", { class: "rate", "data-metric": rate.key }, percent(row.rates[rate.key])),
    " ",
    el("span", { class: "count", "data-count": rate.key, title: "分子 / 分母 numerator / denominator" },
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
        el("dd", {}, el("span", { class: "rate" },
          el("span", { "data-metric": "received" }, c.received || 0), " / ",
          el("span", { "data-metric": "completed" }, c.completed || 0)))),
    );
    cards.push(callbackCard(row));
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
      return el("tr", { "data-group": value || "" },
        el("th", { scope: "row" }, value || "（未定）(none)"),
        el("td", { class: "num", "data-metric": "received" }, row.counts.received),
        ...RATES.map((rate) => el("td", { class: "num" }, ...rateCell(rate, row))));
    }));
    barChart($("groups-chart"), items.map((row) => ({
      label: (row.dims && row.dims[group]) || "（未定）",
      bars: TREND_SERIES.map((s) => ({ value: row.rates[s.key], color: s.color, title: s.zh })),
    })), 1, percent, TREND_SERIES);
  } catch (error) {
    tbody.replaceChildren();
    $("groups-chart").replaceChildren();
    failed("groups-msg", error);
  }
}

// One ranking row: a department (with tier, return rate, bottom-up ratings and whistles) or a
// street / community (those columns blank).
function rankingRow(d) {
  const department = d.department !== undefined;
  const name = department ? d.department : d.unit;
  const bottomUp = d.bottom_up_avg === null || d.bottom_up_avg === undefined
    ? "—" : `${d.bottom_up_avg.toFixed(2)} (${d.bottom_up_count})`;
  const attrs = department ? { "data-department": name, "data-unit": name } : { "data-unit": name };
  return el("tr", attrs,
    el("td", { class: "num", "data-metric": "rank" }, d.rank),
    el("th", { scope: "row" }, name),
    el("td", { class: "num" }, department ? `${d.tier_rank} (${d.tier || "—"})` : "—"),
    el("td", { class: "num strong", "data-metric": "composite" },
      d.composite === null || d.composite === undefined ? "—" : d.composite.toFixed(1)),
    el("td", { class: "num" }, ...rateCell(RATES[0], d)),
    el("td", { class: "num" }, ...rateCell(RATES[2], d)),
    el("td", { class: "num" }, ...rateCell(RATES[3], d)),
    el("td", { class: "num" }, ...rateCell(RATES[1], d)),
    department
      ? el("td", { class: "num" }, el("span", { class: "rate" }, percent(d.return_rate)), " ",
        el("span", { class: "count" }, `${d.referrals_returned} / ${d.referrals}`))
      : el("td", { class: "num" }, "—"),
    el("td", { class: "num" }, department ? bottomUp : "—"),
    el("td", { class: "num" }, department ? `${d.whistles_reported} / ${d.whistles}` : "—"));
}

function listRow(r) {
  const open = el("button", { type: "button", class: "link", title: "查看轨迹 Show timeline" },
    el("code", {}, r.request_id));
  open.addEventListener("click", () => {
    $("timeline-id").value = r.request_id;
    loadTimeline();
  });
  return el("tr", { class: r.overdue ? "late" : "", "data-request-id": r.request_id },
    el("th", { scope: "row" }, open),
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
    if (name === "ranking") drawRanking(tbody);
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
    const unit = $("rank-unit").value;
    const url = fill(API.ranking, {
      unit, month: $("rank-month").value, w1: $("w1").value, w2: $("w2").value,
      w3: $("w3").value, w4: $("w4").value, limit: PAGE_SIZE,
    });
    state.urls.ranking = unit === "departments" ? withParams(url, { tier: $("rank-tier").value }) : url;
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

// The map (drawn by dashboard-map.js): polygons for every role, the open requests' points
// under the list rule, so the map takes the list filters (street and community only).
async function loadMap() {
  const params = state.session && state.session.list_filter !== null ? listFilters() : filters();
  const query = {};
  for (const key of ["street", "community", "department"]) if (params[key]) query[key] = params[key];
  try {
    const body = await getJson(withParams(API.map, query));
    const dots = drawMap($("map-chart"), body, (id) => {
      $("timeline-id").value = id;
      loadTimeline();
    });
    if (!body.areas.length) {
      setMsg("map-msg", "未配置网格边界。No grid polygons are configured.", false);
    } else if (!body.points_visible) {
      setMsg("map-msg", "当前角色只能查看网格边界。Your role sees the grid polygons only.", false);
    } else {
      setMsg("map-msg", `${dots} 个未办结工单 open requests with a location` +
        (body.truncated ? "（仅显示最近的 most recent only）" : ""), false);
    }
  } catch (error) {
    failed("map-msg", error);
  }
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
  document.body.dataset.state = "loading";
  if (state.timer) clearTimeout(state.timer);
  try {
    await Promise.allSettled([
      loadHeadline(),
      loadTrend(),
      loadGroups(),
      loadRanking(false),
      loadList("overdue", "overdue", false),
      loadList("dueSoon", "due-soon", false),
      loadHealth(),
      loadTimeline(),
      loadReports(),
      loadMap(),
    ]);
  } finally {
    state.refreshing = false;
  }
  if (!state.session) return;
  $("updated").replaceChildren(...bilingual("更新于", "Updated"),
    " " + timeFormat.format(new Date()) + " · ", ...bilingual("每30秒自动刷新", "auto-refresh every 30 s"));
  document.body.dataset.state = "ready";
  state.timer = setTimeout(refresh, REFRESH_MS);
}

// ---------- charts (inline SVG) ----------

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const child of children) {
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

function legend(series) {
  return el("p", { class: "legend" }, ...series.map((s) => {
    const swatch = svg("svg", { width: 12, height: 12, "aria-hidden": "true" },
      svg("rect", { width: 12, height: 12, fill: s.color }));
    return el("span", {}, swatch, " " + s.zh + " ", el("span", { lang: "en" }, s.en));
  }));
}

// Lines of rates (0–100 %) over `periods`, with the received count as bars behind them.
function lineChart(box, periods, received, series) {
  const W = 760, H = 260, L = 44, R = 44, T = 12, B = 34;
  const iw = W - L - R, ih = H - T - B;
  const step = periods.length > 1 ? iw / (periods.length - 1) : 0;
  const x = (i) => L + (periods.length > 1 ? i * step : iw / 2);
  const y = (v) => T + ih * (1 - v);
  const maxReceived = Math.max(1, ...received);
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg",
    "aria-label": "趋势图 Trend chart" });
  for (const v of [0, 0.25, 0.5, 0.75, 1]) {
    chart.append(svg("line", { x1: L, x2: W - R, y1: y(v), y2: y(v), stroke: "#d8dee4" }),
      svg("text", { x: L - 6, y: y(v) + 4, "text-anchor": "end", class: "axis" }, `${v * 100}%`));
  }
  chart.append(svg("text", { x: W - R + 6, y: T + 8, class: "axis" }, String(maxReceived)));
  const barW = Math.max(4, Math.min(28, (periods.length > 1 ? step : iw) * 0.5));
  periods.forEach((p, i) => {
    const h = ih * (received[i] / maxReceived);
    chart.append(svg("rect", { x: x(i) - barW / 2, y: T + ih - h, width: barW, height: h,
      fill: "#cfd8e3", "data-period": p }, svg("title", {}, `${p}: ${received[i]}`)));
    chart.append(svg("text", { x: x(i), y: H - B + 16, "text-anchor": "middle", class: "axis" }, p));
  });
  for (const s of series) {
    const points = s.values.map((v, i) => (v === null || v === undefined ? null : [x(i), y(v)]));
    let d = "";
    let pen = false;
    for (const pt of points) {
      if (!pt) { pen = false; continue; }
      d += (pen ? " L" : " M") + pt[0].toFixed(1) + " " + pt[1].toFixed(1);
      pen = true;
    }
    if (d) chart.append(svg("path", { d: d.trim(), fill: "none", stroke: s.color, "stroke-width": 2.5 }));
    points.forEach((pt, i) => {
      if (!pt) return;
      chart.append(svg("circle", { cx: pt[0], cy: pt[1], r: 4, fill: s.color },
        svg("title", {}, `${periods[i]} ${s.zh}: ${percent(s.values[i])}`)));
    });
  }
  box.replaceChildren(chart, legend(series));
}

// Horizontal bars, one group per row; `max` is the full-scale value, `format` the label.
function barChart(box, rows, max, format, series) {
  if (!rows.length) {
    box.replaceChildren();
    return;
  }
  const per = rows[0].bars.length;
  const barH = 12, gap = 10, L = 150, W = 760, R = 70;
  const rowH = per * barH + gap;
  const H = rows.length * rowH + 8;
  const chart = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg",
    "aria-label": "条形图 Bar chart" });
  rows.forEach((row, r) => {
    const top = 4 + r * rowH;
    chart.append(svg("text", { x: L - 8, y: top + (per * barH) / 2 + 4, "text-anchor": "end",
      class: "axis" }, row.label));
    row.bars.forEach((bar, b) => {
      const v = bar.value === null || bar.value === undefined ? 0 : bar.value;
      const w = Math.max(0, (W - L - R) * Math.min(1, v / max));
      const yy = top + b * barH;
      chart.append(svg("rect", { x: L, y: yy, width: w, height: barH - 2, fill: bar.color },
        svg("title", {}, `${row.label} ${bar.title}: ${format(bar.value)}`)));
      chart.append(svg("text", { x: L + w + 4, y: yy + barH - 3, class: "axis small" }, format(bar.value)));
    });
  });
  box.replaceChildren(chart, ...(series ? [legend(series)] : []));
}

function drawRanking(tbody) {
  const rows = [...tbody.rows].map((tr) => {
    const text = tr.querySelector("[data-metric=composite]").textContent;
    const value = Number.parseFloat(text);
    return {
      label: tr.dataset.unit,
      bars: [{ value: Number.isNaN(value) ? null : value, color: "#b4232a", title: "综合得分" }],
    };
  });
  barChart($("ranking-chart"), rows, 100, (v) => (v === null || v === undefined ? "—" : v.toFixed(1)));
}

// ---------- trend ----------

// The last `TREND_SPAN[grain]` period keys up to the anchor day, oldest first.
function trendPeriods(grain, anchor) {
  const keys = [];
  const n = TREND_SPAN[grain] || 8;
  for (let i = n - 1; i >= 0; i--) {
    let d;
    if (grain === "week") d = new Date(anchor.getTime() - i * 7 * 86400000);
    else {
      const local = new Date(anchor.getTime() + 8 * 3600 * 1000);
      d = new Date(Date.UTC(local.getUTCFullYear(), local.getUTCMonth() - i, 15, 0, 0, 0));
    }
    keys.push(periodKey(grain, d));
  }
  return keys;
}

async function loadTrend() {
  const grain = $("trend-grain").value;
  const periods = trendPeriods(grain, state.anchor);
  const params = filters();
  const url = withParams(fill(API.trend, { period: grain, from: periods[0], to: periods[periods.length - 1] }), params);
  $("trend-scope").textContent = `${periods[0]} – ${periods[periods.length - 1]} ${scopeText(params)}`;
  const tbody = $("trend-table").tBodies[0];
  try {
    const body = await getJson(url);
    const byPeriod = {};
    for (const row of body.items || []) {
      byPeriod[row.period] = byPeriod[row.period] ? total([byPeriod[row.period], row]) : row;
    }
    const rows = periods.map((p) => byPeriod[p] || null);
    setMsg("trend-msg", rows.some(Boolean) ? "" : "此期间无工单。No requests in this range.");
    lineChart($("trend-chart"), periods, rows.map((r) => (r ? r.counts.received : 0)),
      TREND_SERIES.map((s) => ({ ...s, values: rows.map((r) => (r ? r.rates[s.key] : null)) })));
    tbody.replaceChildren(...periods.filter((p) => byPeriod[p]).map((p) => {
      const row = byPeriod[p];
      return el("tr", { "data-period": p },
        el("th", { scope: "row" }, p),
        el("td", { class: "num", "data-metric": "received" }, row.counts.received),
        ...TREND_SERIES.map((s) => el("td", { class: "num", "data-metric": s.key }, percent(row.rates[s.key]))));
    }));
  } catch (error) {
    $("trend-chart").replaceChildren();
    tbody.replaceChildren();
    failed("trend-msg", error);
  }
}

// ---------- timeline ----------

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

async function loadTimeline() {
  const id = $("timeline-id").value.trim();
  const list = $("timeline");
  const chart = $("timeline-chart");
  if (!id) return;
  if (!UUID_RE.test(id)) {
    list.replaceChildren();
    chart.replaceChildren();
    setMsg("timeline-msg", "工单编号格式不对。Not a request id (UUID).", true);
    return;
  }
  const role = state.session && state.session.role;
  if (!["auditor", "supervisor", "system"].includes(role)) {
    list.replaceChildren();
    chart.replaceChildren();
    setMsg("timeline-msg", "仅审计、督办角色可查看工单轨迹。Timelines are for auditors and supervisors.", true);
    return;
  }
  try {
    const steps = await getJson(fill(API.timeline, { id }));
    setMsg("timeline-msg", steps.length ? "" : "暂无。None.");
    const times = steps.map((s) => new Date(s.envelope.occurred_at).getTime());
    const first = Math.min(...times), last = Math.max(...times);
    list.replaceChildren(...steps.map((s, i) => {
      const e = s.envelope;
      const type = e.type;
      const stage = s.state_after && s.state_after.stage;
      const actor = e.actor ? [e.actor.id, e.actor.role, e.actor.unit].filter(Boolean).join(" · ") : "";
      const since = i === 0 ? "" : " (+" + duration((times[i] - first) / 1000) + ")";
      return el("li", { "data-version": e.version, "data-type": type },
        el("time", { datetime: e.occurred_at }, when(e.occurred_at) + since), " ",
        el("strong", {}, (EVENT_LABELS[type] ? EVENT_LABELS[type] + " " : "") + type), " ",
        el("span", { class: "count" }, actor), " → ",
        el("span", { "data-stage": stage || "" }, (STAGES[stage] ? STAGES[stage] + " " : "") + (stage || "")));
    }));
    const W = 760, H = 44, L = 10, R = 10;
    const span = Math.max(1, last - first);
    const strip = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", class: "chart-svg",
      "aria-label": "轨迹时间轴 Timeline" },
    svg("line", { x1: L, x2: W - R, y1: 22, y2: 22, stroke: "#5b6673" }));
    steps.forEach((s, i) => {
      const cx = L + ((times[i] - first) / span) * (W - L - R);
      const late = ["deadline_missed", "escalated", "reopened"].includes(s.envelope.type);
      strip.append(svg("circle", { cx, cy: 22, r: 6, fill: late ? "#b4232a" : "#1f6feb" },
        svg("title", {}, `${when(s.envelope.occurred_at)} ${s.envelope.type}`)));
    });
    chart.replaceChildren(strip);
  } catch (error) {
    list.replaceChildren();
    chart.replaceChildren();
    failed("timeline-msg", error);
  }
}

// ---------- reports upward ----------

const REPORT_LEVELS = { street: "街道", district: "区", city: "市" };
const FEEDBACK_KINDS = { received: "已接收", questioned: "质询", returned: "退回更正", accepted: "已采纳" };

async function loadReports() {
  const tbody = $("reports").tBodies[0];
  try {
    const reports = await getJson(API.reports);
    setMsg("reports-msg", reports.length ? "" : "暂无上报报表。No reports published yet.");
    tbody.replaceChildren(...reports.map((r) => {
      const revisions = el("ol", { class: "revisions" }, ...r.revisions.map((v) =>
        el("li", { "data-revision": v.revision, "data-message-id": v.message_id },
          `r${v.revision} `, el("time", { datetime: v.published_at }, when(v.published_at)),
          ` · ${v.published_by.id} · sha256 ${v.figures_sha256.slice(0, 12)}…`,
          v.supersedes ? ` · ${v.changes} 项变更 changes: ${v.reason || ""}` : "")));
      const feedback = el("ul", { class: "feedback" }, ...r.feedback.map((f) =>
        el("li", { "data-kind": f.kind, "data-revision": f.revision },
          `r${f.revision} ${FEEDBACK_KINDS[f.kind] || ""} ${f.kind} `,
          el("time", { datetime: f.recorded_at }, when(f.recorded_at)),
          ` · ${f.from.id}` + (f.comments ? `：${f.comments}` : ""))));
      const status = r.status || "";
      return el("tr", { "data-report-id": r.report_id, "data-revisions": r.revisions.length,
        "data-status": status },
      el("td", {}, (REPORT_LEVELS[r.level] || "") + " " + r.level),
      el("td", {}, r.unit),
      el("td", {}, r.period),
      el("td", {}, revisions),
      el("td", {}, feedback),
      el("td", {}, status ? (FEEDBACK_KINDS[status] || "") + " " + status : "—"));
    }));
  } catch (error) {
    tbody.replaceChildren();
    failed("reports-msg", error);
  }
}

// ---------- URL fragment ----------

// Reads the fragment's settings; moves credentials into session storage and out of the URL.
function readFragment() {
  const params = new URLSearchParams(location.hash.replace(/^#/, ""));
  const date = params.get("date");
  const parsed = date && /^\d{4}-\d{2}-\d{2}$/.test(date) ? new Date(date + "T12:00:00+08:00") : null;
  state.anchor = parsed && !Number.isNaN(parsed.getTime()) ? parsed : new Date();
  for (const [param, id] of [["grain", "grain"], ["trend", "trend-grain"], ["group", "group-by"]]) {
    const value = params.get(param);
    const select = $(id);
    if (value && [...select.options].some((o) => o.value === value)) select.value = value;
  }
  if (params.get("request")) $("timeline-id").value = params.get("request");
  const token = params.get("token");
  const actor = params.get("actor");
  if (token || actor) {
    sessionStorage.removeItem(STORE_TOKEN);
    sessionStorage.removeItem(STORE_ACTOR);
    if (token) sessionStorage.setItem(STORE_TOKEN, token);
    else if (document.body.dataset.devIdentity === "true") sessionStorage.setItem(STORE_ACTOR, actor);
    params.delete("token");
    params.delete("actor");
    const rest = params.toString();
    history.replaceState(null, "", location.pathname + location.search + (rest ? "#" + rest : ""));
  }
}

// ---------- wiring ----------

function setGrain(grain) {
  const input = $("period-key");
  input.type = INPUT_TYPE[grain] || "text";
  input.value = periodKey(grain, state.anchor || new Date());
}

document.addEventListener("DOMContentLoaded", () => {
  readFragment();
  setGrain($("grain").value);
  $("rank-month").value = periodKey("month", state.anchor);

  $("grain").addEventListener("change", () => {
    setGrain($("grain").value);
    refresh();
  });
  $("filters").addEventListener("submit", (event) => {
    event.preventDefault();
    refresh();
  });
  $("group-by").addEventListener("change", () => loadGroups());
  $("trend-grain").addEventListener("change", () => loadTrend());
  $("trend-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadTrend();
  });
  $("timeline-form").addEventListener("submit", (event) => {
    event.preventDefault();
    loadTimeline();
  });
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
