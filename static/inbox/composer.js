// The reply composer: type switcher, 2048-byte counter (§2.4), "/" canned
// replies, quota hint and last-send warning (§3.1), locking, typing hints.
import { format } from "./window.js";

const encoder = new TextEncoder();

export class Composer {
  constructor(root, { config, live, post, onSent }) {
    this.root = root;
    this.config = config;
    this.strings = config.strings;
    this.live = live;
    this.post = post;
    this.onSent = onSent;
    this.state = config.state;
    this.form = root.querySelector("#reply-form");
    this.fields = root.querySelector("#reply-fields");
    this.msgtype = root.querySelector("#msgtype");
    this.content = root.querySelector("#content");
    this.counter = root.querySelector("#byte-count");
    this.menu = root.querySelector("#canned-menu");
    this.lock = root.querySelector("#composer-lock");
    this.lockReason = root.querySelector("#lock-reason");
    this.hint = root.querySelector("#quota-hint");
    this.error = root.querySelector("#reply-error");
    this.sendButton = root.querySelector("#send-button");
    this.lastTyping = 0;
    this.matches = [];
    this.active = 0;
    this.bind();
    this.showType();
    this.count();
    this.apply(this.state);
  }

  bind() {
    this.root.querySelectorAll(".ctab").forEach((tab) =>
      tab.addEventListener("click", () => this.mode(tab.dataset.mode)),
    );
    this.msgtype.addEventListener("change", () => this.showType());
    this.content.addEventListener("input", () => {
      this.count();
      this.canned();
      this.typing();
    });
    this.content.addEventListener("keydown", (event) => this.menuKeys(event));
    this.content.addEventListener("blur", () => {
      setTimeout(() => this.closeMenu(), 150);
      this.live.stopTyping();
    });
    this.form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.submit();
    });
    const note = this.root.querySelector("#note-form");
    note.addEventListener("submit", async (event) => {
      event.preventDefault();
      const result = await this.post(note.action, new FormData(note));
      this.showError(this.root.querySelector("#note-error"), result.ok ? "" : result.error);
      if (result.ok) {
        note.reset();
        this.onSent();
      }
    });
    const take = this.root.querySelector("[data-take]");
    if (take) {
      take.addEventListener("click", async () => {
        const url = this.config.urls.take.replace("/0/", `/${this.config.conversation}/`);
        const result = await this.post(url, new FormData(this.form));
        this.showError(this.error, result.ok ? "" : result.error);
        this.onSent();
      });
    }
  }

  mode(mode) {
    this.root.querySelectorAll(".ctab").forEach((tab) => tab.classList.toggle("active", tab.dataset.mode === mode));
    this.root.querySelectorAll("[data-mode-panel]").forEach((panel) => {
      panel.hidden = panel.dataset.modePanel !== mode;
    });
    this.lock.hidden = mode !== "reply" || this.state.can_send;
  }

  showType() {
    const type = this.msgtype.value;
    this.root.querySelectorAll(".type-fields").forEach((block) => {
      block.hidden = block.dataset.type !== type;
    });
  }

  bytes() {
    return encoder.encode(this.content.value).length;
  }

  count() {
    const size = this.bytes();
    this.counter.textContent = size;
    const over = size > this.config.textMaxBytes;
    this.counter.parentElement.classList.toggle("over", over);
    this.sendButton.disabled = over && this.msgtype.value === "text";
  }

  typing() {
    // The server side throttles WeChat's typing call to once per 15 s (§4);
    // colleagues only need a refresh every few seconds.
    const now = Date.now();
    if (now - this.lastTyping > 3000 && this.content.value.trim()) {
      this.lastTyping = now;
      this.live.typing();
    }
  }

  // --- canned replies ("/" + shortcut) -----------------------------------

  canned() {
    const caret = this.content.selectionStart;
    const before = this.content.value.slice(0, caret);
    // "/" starts a shortcut after a space, CJK text or punctuation — not
    // inside a URL or a path ("https://", "a/b").
    const match = before.match(/(?:^|[^\w/:.])\/([\w-]*)$/);
    if (!match) {
      this.closeMenu();
      return;
    }
    const prefix = match[1].toLowerCase();
    this.slashStart = caret - match[1].length - 1;
    this.matches = this.config.canned.filter((reply) => reply.shortcut.toLowerCase().startsWith(prefix)).slice(0, 8);
    if (!this.matches.length) {
      this.closeMenu();
      return;
    }
    this.active = 0;
    this.renderMenu();
  }

  renderMenu() {
    this.menu.replaceChildren(
      ...this.matches.map((reply, index) => {
        const item = document.createElement("li");
        item.setAttribute("role", "option");
        item.className = index === this.active ? "active" : "";
        const code = document.createElement("code");
        code.textContent = `/${reply.shortcut}`;
        const title = document.createElement("span");
        title.textContent = ` ${reply.title}`;
        item.append(code, title);
        item.addEventListener("mousedown", (event) => {
          event.preventDefault();
          this.choose(reply);
        });
        return item;
      }),
    );
    this.menu.hidden = false;
  }

  closeMenu() {
    this.menu.hidden = true;
    this.matches = [];
  }

  menuKeys(event) {
    if (this.menu.hidden || !this.matches.length) return;
    if (event.key === "ArrowDown" || event.key === "ArrowUp") {
      event.preventDefault();
      const step = event.key === "ArrowDown" ? 1 : -1;
      this.active = (this.active + step + this.matches.length) % this.matches.length;
      this.renderMenu();
    } else if (event.key === "Enter" || event.key === "Tab") {
      event.preventDefault();
      this.choose(this.matches[this.active]);
    } else if (event.key === "Escape") {
      this.closeMenu();
    }
  }

  choose(reply) {
    const value = this.content.value;
    const caret = this.content.selectionStart;
    const head = value.slice(0, this.slashStart);
    const tail = value.slice(caret);
    this.closeMenu();
    if (reply.kind === "text") {
      this.content.value = head + reply.text + tail;
      const at = head.length + reply.text.length;
      this.content.setSelectionRange(at, at);
    } else {
      this.content.value = head + tail;
      this.msgtype.value = reply.kind;
      this.showType();
      const select = reply.kind === "news" ? this.root.querySelector("#news_template") : this.root.querySelector(`#${reply.kind}_asset`);
      const wanted = String(reply.kind === "news" ? reply.news : reply.media);
      if (select && [...select.options].some((option) => option.value === wanted)) select.value = wanted;
    }
    this.count();
    this.content.focus();
  }

  // --- lock, quota, send --------------------------------------------------

  apply(state) {
    this.state = state;
    const reply = !this.form.hidden;
    this.fields.disabled = !state.can_send;
    this.lock.hidden = !reply || state.can_send;
    this.lockReason.textContent = state.blocker || "";
    this.root.dataset.canSend = state.can_send ? "1" : "0";
    const take = this.root.querySelector("[data-take]");
    if (take) take.hidden = Boolean(state.assignee);
    const remaining = state.window.remaining;
    this.hint.classList.remove("warn");
    if (!state.can_send || remaining === null || remaining === undefined) {
      this.hint.textContent = "";
    } else if (remaining <= 1) {
      this.hint.textContent = this.strings.lastOne;
      this.hint.classList.add("warn");
    } else {
      this.hint.textContent = format(this.strings.afterSend, { n: remaining - 1 });
    }
  }

  windowClosed() {
    // The countdown reached zero in the browser: lock now, the server agrees
    // on the next refresh (and WeChat's 45015 would anyway, §3.2).
    if (!this.state.can_send || this.state.blocker_kind === "who") return;
    this.apply({
      ...this.state,
      can_send: false,
      blocker: this.strings.windowClosed,
      blocker_kind: "window",
      window: { ...this.state.window, open: false, remaining: 0 },
    });
  }

  async submit() {
    if (!this.state.can_send) return;
    if (this.msgtype.value === "text" && this.bytes() > this.config.textMaxBytes) {
      this.showError(this.error, format(this.strings.tooLong, { max: this.config.textMaxBytes }));
      return;
    }
    const remaining = this.state.window.remaining;
    if (remaining === 1 && !window.confirm(this.strings.confirmLast)) return;
    this.sendButton.disabled = true;
    try {
      const result = await this.post(this.form.action, new FormData(this.form));
      this.showError(this.error, result.ok ? "" : result.error);
      if (result.ok) {
        this.content.value = "";
        this.form.querySelector("#send_at").value = "";
        this.count();
        this.live.stopTyping();
        this.onSent();
      }
    } finally {
      this.sendButton.disabled = false;
      this.count();
    }
  }

  showError(element, message) {
    element.textContent = message || "";
    element.hidden = !message;
  }
}
