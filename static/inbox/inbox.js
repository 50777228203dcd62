// The inbox screen: conversation list, one open conversation, live updates.
// Server-rendered fragments are refetched when a live update says something
// changed; the page never edits rows from event payloads on its own.
import { Composer } from "./composer.js";
import { Live } from "./live.js";
import { ding } from "./sound.js";
import { format, tickBadges } from "./window.js";

const config = JSON.parse(document.getElementById("inbox-config").textContent);
const strings = config.strings;
const $ = (selector) => document.querySelector(selector);

function csrfToken() {
  const input = document.querySelector("input[name=csrfmiddlewaretoken]");
  if (input) return input.value;
  const cookie = document.cookie.split("; ").find((c) => c.startsWith("csrftoken="));
  return cookie ? cookie.split("=")[1] : "";
}

async function post(url, body) {
  try {
    const response = await fetch(url, {
      method: "POST",
      body,
      headers: { Accept: "application/json", "X-CSRFToken": csrfToken() },
      credentials: "same-origin",
    });
    if (response.headers.get("Content-Type")?.includes("application/json")) return await response.json();
    return { ok: false, error: strings.failed };
  } catch (error) {
    return { ok: false, error: strings.failed };
  }
}

function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

// --- list ------------------------------------------------------------------

let badgeTotal = null;

function listQuery(extra = {}) {
  const params = new URLSearchParams(location.search);
  params.delete("cursor");
  Object.entries(extra).forEach(([key, value]) => params.set(key, value));
  return params;
}

function applyBadges(badges) {
  Object.entries(badges).forEach(([tab, count]) => {
    const badge = document.querySelector(`[data-badge="${tab}"]`);
    if (!badge) return;
    badge.textContent = count > 99 ? "99+" : String(count);
    badge.hidden = !count;
  });
  const total = (badges.mine || 0) + (badges.unassigned || 0);
  document.title = total ? `(${total > 99 ? "99+" : total}) ${strings.title}` : strings.title;
  const grew = badgeTotal !== null && total > badgeTotal;
  badgeTotal = total;
  return grew;
}

async function refreshList() {
  const response = await fetch(`${config.urls.conversations}?${listQuery()}`, { headers: { Accept: "application/json" } });
  if (!response.ok) return false;
  const body = await response.json();
  const rows = $("#rows");
  rows.innerHTML = body.html;
  markSelected();
  tickBadges(rows, strings);
  return applyBadges(body.badges);
}

function markSelected() {
  document.querySelectorAll("#rows .row").forEach((row) => {
    row.classList.toggle("selected", Number(row.dataset.conversation) === config.conversation);
  });
}

async function loadMore(link) {
  const params = listQuery({ cursor: link.dataset.cursor });
  const response = await fetch(`${config.urls.conversations}?${params}`, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const body = await response.json();
  link.closest("li").remove();
  $("#rows").insertAdjacentHTML("beforeend", body.html);
  tickBadges($("#rows"), strings);
}

// --- one conversation --------------------------------------------------------

let composer = null;

function nearBottom(element) {
  return element.scrollHeight - element.scrollTop - element.clientHeight < 80;
}

async function refreshConversation() {
  if (!config.conversation) return;
  const url = config.urls.conversation.replace("/0/", `/${config.conversation}/`);
  const response = await fetch(url, { headers: { Accept: "application/json" } });
  if (!response.ok) return;
  const body = await response.json();
  const timeline = $("#timeline");
  const stick = nearBottom(timeline);
  timeline.innerHTML = body.timeline;
  $("#conv-header").innerHTML = body.header;
  const panel = $("#panel");
  if (!panel.contains(document.activeElement)) panel.innerHTML = body.panel;
  if (stick) timeline.scrollTop = timeline.scrollHeight;
  if (composer) composer.apply(body.state);
  tickBadges(document, strings, onWindowClosed);
  pace();
}

function pace() {
  // Sends in flight change status from another process (the send worker);
  // look more often until they settle.
  const inFlight = document.querySelector('#timeline [data-status="queued"], #timeline [data-status="sending"]');
  live.setSyncInterval(inFlight ? 2000 : 15000);
}

function onWindowClosed(badge) {
  if (composer && badge.closest("#conv-header")) composer.windowClosed();
}

// --- presence ------------------------------------------------------------------

let typingTimer = null;

function showPresence(message) {
  if (message.conversation !== config.conversation) return;
  const others = message.viewers.filter((viewer) => viewer.user !== config.user);
  const box = $("#presence");
  if (!box) return;
  const lines = [];
  if (others.length) lines.push(format(strings.viewing, { names: others.map((o) => o.name).join("、") }));
  others.filter((o) => o.typing).forEach((o) => lines.push(format(strings.typing, { name: o.name })));
  box.textContent = lines.join(" · ");
  box.hidden = !lines.length;
  clearTimeout(typingTimer);
  if (others.some((o) => o.typing)) {
    // Typing rows expire on the server without a message; fade it here.
    typingTimer = setTimeout(() => showPresence({ ...message, viewers: message.viewers.map((v) => ({ ...v, typing: false })) }), 7000);
  }
}

// --- live updates ------------------------------------------------------------------

let inboundSeen = false;
const refreshListSoon = debounce(async () => {
  const inbound = inboundSeen;
  inboundSeen = false;
  const grew = await refreshList();
  if (inbound && (grew || document.hidden)) ding();
}, 250);
const refreshConversationSoon = debounce(refreshConversation, 150);

function onUpdate(update) {
  if (update.kind === "inbound") inboundSeen = true;
  refreshListSoon();
  if (update.conversation && update.conversation === config.conversation) refreshConversationSoon();
}

function onState(state) {
  const box = $("#connection");
  box.dataset.state = state;
  box.textContent = strings[state] || state;
}

const live = new Live({
  socketPath: config.urls.socket,
  updatesUrl: config.urls.updates,
  lastId: config.lastUpdateId,
  onUpdate,
  onPresence: showPresence,
  onState,
});

// --- wiring ------------------------------------------------------------------------

document.addEventListener("submit", async (event) => {
  const form = event.target;
  if (!form.matches("[data-action]")) return;
  event.preventDefault();
  if (form.dataset.confirm && !window.confirm(form.dataset.confirm)) return;
  const result = await post(form.action, new FormData(form));
  if (!result.ok) window.alert(result.error || strings.failed);
  refreshConversation();
  refreshList();
});

document.addEventListener("click", (event) => {
  const more = event.target.closest("#rows .more a");
  if (more) {
    event.preventDefault();
    loadMore(more);
  }
});

document.querySelectorAll("#filters select").forEach((select) => select.addEventListener("change", () => select.form.submit()));

live.start();
if (config.conversation) {
  live.watch(config.conversation);
  const timeline = $("#timeline");
  timeline.scrollTop = timeline.scrollHeight;
  composer = new Composer($("#composer"), { config, live, post, onSent: refreshConversation });
  pace();
}
applyBadges(
  Object.fromEntries(
    [...document.querySelectorAll("[data-badge]")].map((badge) => [badge.dataset.badge, Number.parseInt(badge.textContent, 10) || 0]),
  ),
);
setInterval(() => tickBadges(document, strings, onWindowClosed), 1000);
tickBadges(document, strings, onWindowClosed);
