// The follower simulator: polls the sandbox state about once a second and
// posts follower actions. Everything the console sent is rendered by type;
// nothing from a message is ever inserted as HTML.
(function () {
  "use strict";

  const config = JSON.parse(document.getElementById("sim-config").textContent);
  const T = JSON.parse(document.getElementById("sim-text").textContent);
  const $ = (id) => document.getElementById(id);
  const accountSelect = $("account");
  let openid = "";
  let current = null;
  let lastTimeline = "";
  let lastFollowers = "";

  function csrf() {
    const match = document.cookie.match(/(?:^|;\s*)csrftoken=([^;]+)/);
    return match ? decodeURIComponent(match[1]) : "";
  }

  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attrs || {})) {
      if (name === "class") node.className = value;
      else if (name.startsWith("on")) node.addEventListener(name.slice(2), value);
      else if (value !== undefined && value !== null) node.setAttribute(name, value);
    }
    for (const child of children) {
      if (child === null || child === undefined) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  // Pictures load after the row is placed; keep the newest message in view.
  function scrollOnLoad(event) {
    const chat = $("chat");
    if (event.target.closest(".msg") === chat.lastElementChild) chat.scrollTop = chat.scrollHeight;
  }

  function fileUrl(mediaId) {
    return config.files.replace("MEDIA", encodeURIComponent(mediaId));
  }

  function safeHref(href) {
    return /^https?:\/\//i.test(href || "") ? href : null;
  }

  function showError(message) {
    const box = $("phone-error");
    box.textContent = message || "";
    box.hidden = !message;
  }

  async function post(url, data, isJson) {
    const options = { method: "POST", headers: { "X-CSRFToken": csrf() }, credentials: "same-origin" };
    if (isJson) {
      options.headers["Content-Type"] = "application/json";
      options.body = JSON.stringify(data);
    } else {
      const form = new FormData();
      for (const [k, v] of Object.entries(data)) form.append(k, v);
      options.body = form;
    }
    const response = await fetch(url, options);
    const body = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(body.error || response.statusText);
    return body;
  }

  async function act(action, fields) {
    if (!openid) { showError(T.noFollower); return; }
    try {
      showError("");
      await post(config.act, Object.assign({ account: accountSelect.value, openid, action }, fields || {}));
      refresh();
    } catch (error) {
      showError(error.message);
    }
  }

  // --- text with links (§2.4): <a href>, mini-program links, bizmsgmenu links ---
  function richText(content) {
    const out = el("span", { class: "text" });
    const anchor = /<a\s+([^>]*)>([\s\S]*?)<\/a>/gi;
    let last = 0;
    let match;
    while ((match = anchor.exec(content)) !== null) {
      out.append(document.createTextNode(content.slice(last, match.index)));
      const attrs = {};
      match[1].replace(/([\w-]+)\s*=\s*"([^"]*)"/g, (_m, k, v) => { attrs[k.toLowerCase()] = v; });
      const label = match[2].replace(/<[^>]*>/g, "");
      const href = attrs.href || "";
      if (href.startsWith("weixin://bizmsgmenu")) {
        const params = new URLSearchParams(href.split("?")[1] || "");
        out.append(el("a", { href: "#", class: "menu-choice", onclick: (e) => {
          e.preventDefault();
          act("text", { content: params.get("msgmenucontent") || label, bizmsgmenuid: params.get("msgmenuid") || "" });
        } }, label));
      } else if (attrs["data-miniprogram-appid"]) {
        out.append(el("a", { href: safeHref(href) || "#", class: "miniprogram-link", target: "_blank", rel: "noopener",
          title: `${T.miniprogram} ${attrs["data-miniprogram-appid"]} ${attrs["data-miniprogram-path"] || ""}` }, label));
      } else {
        out.append(el("a", { href: safeHref(href) || "#", target: "_blank", rel: "noopener" }, label));
      }
      last = anchor.lastIndex;
    }
    out.append(document.createTextNode(content.slice(last)));
    return out;
  }

  function card(title, description, extra) {
    return el("div", { class: "card" }, extra || null, el("div", { class: "card-title" }, title || ""),
      description ? el("div", { class: "card-desc" }, description) : null);
  }

  function outbound(type, d) {
    switch (type) {
      case "text": return richText(d.content || "");
      case "image": return el("img", { class: "photo", src: fileUrl(d.media_id), alt: T.image, onload: scrollOnLoad });
      case "voice": return el("span", { class: "voice" }, "🔊 ", T.voice);
      case "video": return card(d.title || T.video, d.description, el("video", { src: fileUrl(d.media_id), controls: "" }));
      case "music": return card("🎵 " + (d.title || T.music), d.description,
        el("a", { href: safeHref(d.hqmusicurl || d.musicurl) || "#", target: "_blank", rel: "noopener" }, "▶"));
      case "news": {
        const a = (d.articles || [])[0] || {};
        const pic = safeHref(a.picurl) ? el("img", { src: a.picurl, alt: "" }) : null;
        return el("a", { class: "news", href: safeHref(a.url) || "#", target: "_blank", rel: "noopener" },
          card(a.title, a.description, pic));
      }
      case "mpnews": case "mpnewsarticle": return card(T.article, d.article_id || d.media_id);
      case "msgmenu": {
        const list = el("div", { class: "msgmenu" });
        if (d.head_content) list.append(el("div", { class: "menu-head" }, d.head_content));
        for (const item of d.list || []) {
          list.append(el("a", { href: "#", class: "menu-choice", "data-menu-id": item.id, onclick: (e) => {
            e.preventDefault();
            act("text", { content: item.content, bizmsgmenuid: item.id });
          } }, item.content));
        }
        if (d.tail_content) list.append(el("div", { class: "menu-tail" }, d.tail_content));
        return list;
      }
      case "wxcard": return card("🎫 " + T.card, d.card_id);
      case "miniprogrampage": return card(d.title, `${T.miniprogram} · ${d.appid} · ${d.pagepath}`,
        el("img", { src: fileUrl(d.thumb_media_id), alt: "", onload: scrollOnLoad }));
      default: return el("code", {}, JSON.stringify(d));
    }
  }

  function inbound(type, d) {
    switch (type) {
      case "text": return el("span", { class: "text" }, d.content, d.bizmsgmenuid ? el("small", {}, ` (${T.chose} #${d.bizmsgmenuid})`) : null);
      case "image": return el("img", { class: "photo", src: fileUrl(d.media_id), alt: T.image, onload: scrollOnLoad });
      case "voice": return el("span", { class: "voice" }, "🎤 ", T.voice, d.recognition ? `：${d.recognition}` : "");
      case "location": return card("📍 " + (d.label || T.location), `${d.latitude}, ${d.longitude}`);
      case "link": return card("🔗 " + d.title, d.url);
      case "click": return el("span", { class: "event" }, `${T.clicked}「${d.label || d.key}」`);
      case "view": return el("span", { class: "event" }, `${T.viewed} ${d.url}`);
      case "subscribe": return el("span", { class: "event" }, T.subscribed, d.scene ? ` (${d.scene})` : "");
      case "unsubscribe": return el("span", { class: "event" }, T.unsubscribed);
      case "scan": return el("span", { class: "event" }, `${T.scanned} (${d.scene})`);
      case "location_report": return el("span", { class: "event" }, T.reported);
      default: return el("code", {}, JSON.stringify(d));
    }
  }

  // Keyed rendering: rows already shown stay in place (a click on a menu
  // choice is never lost to a re-render); only new or changed rows are built.
  const rendered = new Map();

  function timelineRow(item) {
    const isEvent = item.direction === "in" && !["text", "image", "voice", "location", "link"].includes(item.type);
    const bubble = item.direction === "out" ? outbound(item.type, item.data) : inbound(item.type, item.data);
    const meta = el("div", { class: "meta" }, item.time);
    if (item.direction === "in") {
      meta.append(` · ${item.status_text}`);
      if (item.attempts > 1) meta.append(` · ${item.attempts}${T.attempts}`);
    } else if (item.kf_account) {
      meta.append(` · ${item.kf_account}`);
    }
    return el("li", { class: `msg ${item.direction} ${isEvent ? "event-row" : ""} type-${item.type}`, "data-key": item.key },
      el("div", { class: "bubble" }, bubble), meta);
  }

  function renderTimeline(items) {
    const chat = $("chat");
    const wanted = new Set(items.map((item) => item.key));
    for (const [key, entry] of rendered) {
      if (!wanted.has(key)) { entry.node.remove(); rendered.delete(key); }
    }
    let appended = false;
    let previous = null;
    for (const item of items) {
      const signature = `${item.status || ""}/${item.attempts || 0}`;
      let entry = rendered.get(item.key);
      if (!entry) {
        entry = { node: timelineRow(item), signature };
        rendered.set(item.key, entry);
        if (previous) previous.after(entry.node); else chat.prepend(entry.node);
        appended = true;
      } else if (entry.signature !== signature) {
        // Only the delivery status changed: update the meta line in place.
        const fresh = timelineRow(item);
        entry.node.querySelector(".meta").replaceWith(fresh.querySelector(".meta"));
        entry.signature = signature;
      }
      previous = entry.node;
    }
    if (appended) chat.scrollTop = chat.scrollHeight;
  }

  function renderFollowers(followers) {
    const list = $("followers");
    list.replaceChildren();
    for (const f of followers) {
      const li = el("li", { class: f.openid === openid ? "selected" : "" },
        el("button", { type: "button", "data-openid": f.openid, onclick: () => select(f.openid) },
          el("strong", {}, f.nickname || f.openid.slice(0, 12)),
          el("small", {}, ` ${f.subscribed ? T.following : T.notFollowing} · ${f.window.label}`)));
      list.append(li);
    }
  }

  function renderFollower(f) {
    current = f;
    $("phone-title").textContent = f ? `${f.nickname || f.openid}` : T.noFollower;
    $("phone-window").textContent = f ? `${f.subscribed ? T.following : T.notFollowing} · ${T.windowOpen} ${f.window.label}` : "";
    $("phone-window").title = f && !f.window.open ? f.window.reason : "";
    $("btn-follow").hidden = !f || f.subscribed;
    $("btn-unfollow").hidden = !f || !f.subscribed;
    $("phone-typing").hidden = !(f && f.typing);
  }

  function renderFaults(faults) {
    const list = $("faults");
    list.replaceChildren();
    if (!faults.length) list.append(el("li", { class: "muted" }, T.noFaults));
    for (const f of faults) {
      list.append(el("li", { class: f.remaining ? "armed" : "spent" },
        `${f.label} · ${f.endpoint} · ${T.remaining} ${f.remaining} · ${T.hits} ${f.hits}`));
    }
  }

  function renderCalls(calls) {
    const list = $("calls");
    list.replaceChildren();
    for (const c of calls) {
      list.append(el("li", { class: c.errcode ? "error" : "" },
        el("span", {}, `${c.time} ${c.method} ${c.path}`),
        el("b", {}, c.fault ? ` [${c.fault}]` : ""),
        el("span", {}, ` → ${c.http_status ?? "—"} ${c.errcode ?? ""}`)));
    }
  }

  async function refresh() {
    if (!accountSelect.value) return;
    const params = new URLSearchParams({ account: accountSelect.value, openid });
    let data;
    try {
      const response = await fetch(`${config.state}?${params}`, { credentials: "same-origin" });
      data = await response.json();
    } catch (_error) {
      return; // the next poll tries again
    }
    const followers = JSON.stringify(data.followers);
    if (followers !== lastFollowers) { lastFollowers = followers; renderFollowers(data.followers); }
    renderFollower(data.follower);
    const timeline = JSON.stringify(data.timeline);
    if (timeline !== lastTimeline) { lastTimeline = timeline; renderTimeline(data.timeline); }
    renderFaults(data.faults);
    renderCalls(data.calls);
  }

  function select(id) {
    openid = id;
    lastTimeline = "";
    rendered.clear();
    $("chat").replaceChildren();
    lastFollowers = "";
    localStorage.setItem(`sandbox-openid-${accountSelect.value}`, id);
    refresh();
  }

  // --- wiring ---------------------------------------------------------------
  $("composer").addEventListener("submit", (e) => {
    e.preventDefault();
    const text = $("text").value;
    if (!text.trim()) return;
    $("text").value = "";
    act("text", { content: text });
  });
  $("btn-emoji").addEventListener("click", () => { $("emoji").hidden = !$("emoji").hidden; });
  $("btn-more").addEventListener("click", () => { $("more").hidden = !$("more").hidden; });
  for (const button of document.querySelectorAll(".emoji-item")) {
    button.addEventListener("click", () => { $("text").value += button.textContent; $("text").focus(); });
  }
  for (const button of document.querySelectorAll("[data-action]")) {
    button.addEventListener("click", () => {
      const action = button.dataset.action;
      if (action === "location") {
        const label = prompt(T.askLabel, "上海市人民广场");
        if (label !== null) act("location", { latitude: "31.2304", longitude: "121.4737", scale: "15", label });
      } else if (action === "link") {
        const title = prompt(T.askTitle, "一篇文章");
        const url = title !== null ? prompt(T.askUrl, "https://example.com/article") : null;
        if (url) act("link", { title, description: "", url });
      } else if (action === "scan") {
        const scene = prompt(T.askScene, "1001");
        // Someone not following who scans a parametric code follows with it (§6.4).
        if (scene) act(current && current.subscribed ? "scan" : "subscribe", { scene });
      } else {
        act(action, {});
      }
    });
  }
  $("file-image").addEventListener("change", (e) => {
    const file = e.target.files[0];
    if (file) act("image", { file });
    e.target.value = "";
  });
  for (const button of document.querySelectorAll(".menu-item")) {
    button.addEventListener("click", () => {
      if (button.dataset.menuType === "view") act("view", { url: button.dataset.url });
      else act("click", { key: button.dataset.key, label: button.textContent });
    });
  }
  $("new-follower").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    try {
      const created = await post(config.followers, { account: accountSelect.value, nickname: form.nickname.value, openid: form.openid.value });
      form.reset();
      select(created.openid);
    } catch (error) {
      showError(error.message);
    }
  });
  $("fault-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    const form = e.target;
    try {
      await post(config.faults, { kind: form.kind.value, endpoint: form.endpoint.value, count: form.count.value,
        delay_ms: form.delay_ms.value, http_status: form.http_status.value }, true);
      refresh();
    } catch (error) {
      showError(error.message);
    }
  });
  $("faults-clear").addEventListener("click", async () => { await post(config.faultsClear, {}, true); refresh(); });
  accountSelect.addEventListener("change", () => select(localStorage.getItem(`sandbox-openid-${accountSelect.value}`) || ""));

  openid = localStorage.getItem(`sandbox-openid-${accountSelect.value}`) || "";
  refresh();
  setInterval(refresh, 1000);
})();
