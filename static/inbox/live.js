// The page's live connection: one websocket, auto-reconnect with backoff, and
// catch-up from the last LiveUpdate id so nothing is lost.
//
// The database is the truth; socket events are hints. Two things can make a
// hint go missing: a dropped socket, and an update written by another process
// whose channel layer this server does not share (the send worker on the
// in-memory layer). So besides reacting to events, the page re-syncs from its
// cursor on every (re)connect and on a timer. Ids are not committed in order
// across processes, so each sync starts a little before the cursor and
// already-seen ids are skipped.

const OVERLAP = 50;
const MAX_BACKOFF_MS = 30000;

export class Live {
  constructor({ socketPath, updatesUrl, lastId, onUpdate, onPresence, onState }) {
    this.socketPath = socketPath;
    this.updatesUrl = updatesUrl;
    this.cursor = lastId || 0;
    this.seen = new Set();
    this.onUpdate = onUpdate;
    this.onPresence = onPresence;
    this.onState = onState;
    this.ws = null;
    this.failures = 0;
    this.watching = null;
    this.syncEveryMs = 15000;
    this.timer = null;
    this.heartbeatTimer = null;
    this.stopped = false;
  }

  start() {
    this.connect();
    this.heartbeatTimer = setInterval(() => this.send({ type: "heartbeat" }), 20000);
    this.scheduleSync();
    document.addEventListener("visibilitychange", () => {
      if (!document.hidden) this.sync();
    });
  }

  connect() {
    if (this.stopped) return;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}${this.socketPath}`);
    this.ws = ws;
    this.onState("connecting");
    ws.addEventListener("open", () => {
      this.failures = 0;
      this.onState("connected");
      this.sync();
      if (this.watching) this.send({ type: "watch", conversation: this.watching });
    });
    ws.addEventListener("message", (event) => this.receive(JSON.parse(event.data)));
    ws.addEventListener("close", () => {
      if (this.ws !== ws || this.stopped) return;
      this.ws = null;
      this.failures += 1;
      this.onState("reconnecting");
      // Exponential backoff with jitter, so a restarted server is not stormed.
      const delay = Math.min(MAX_BACKOFF_MS, 500 * 2 ** Math.min(this.failures, 6)) * (0.75 + Math.random() / 2);
      setTimeout(() => this.connect(), delay);
      // Meanwhile keep the page right over plain HTTP.
      this.syncOverHttp();
    });
  }

  send(message) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN) {
      this.ws.send(JSON.stringify(message));
      return true;
    }
    return false;
  }

  receive(message) {
    switch (message.type) {
      case "live":
        this.deliver(message);
        break;
      case "caught_up":
        message.updates.forEach((update) => this.deliver(update, true));
        if (message.more) this.sync();
        break;
      case "presence":
        this.onPresence(message);
        break;
      default:
        break;
    }
  }

  deliver(update, fromSync = false) {
    if (fromSync && update.id > this.cursor) this.cursor = update.id;
    if (this.seen.has(update.id)) return;
    this.seen.add(update.id);
    if (this.seen.size > 5000) {
      // Forget the oldest half; they are far behind the sync overlap.
      Array.from(this.seen).slice(0, 2500).forEach((id) => this.seen.delete(id));
    }
    this.onUpdate(update);
  }

  sync() {
    const after = Math.max(0, this.cursor - OVERLAP);
    if (!this.send({ type: "catch_up", after })) this.syncOverHttp();
  }

  async syncOverHttp() {
    const after = Math.max(0, this.cursor - OVERLAP);
    try {
      const response = await fetch(`${this.updatesUrl}?after=${after}`, { headers: { Accept: "application/json" } });
      if (response.redirected && new URL(response.url).pathname.startsWith("/accounts/login/")) {
        // Logged out (or the session expired): stop knocking and say so.
        this.stopped = true;
        if (this.ws) this.ws.close();
        this.onState("refused");
        return;
      }
      if (!response.ok) return;
      const body = await response.json();
      body.updates.forEach((update) => this.deliver(update, true));
    } catch (error) {
      // Offline: the next reconnect syncs.
    }
  }

  setSyncInterval(ms) {
    if (ms === this.syncEveryMs) return;
    this.syncEveryMs = ms;
    this.scheduleSync();
  }

  scheduleSync() {
    clearInterval(this.timer);
    this.timer = setInterval(() => this.sync(), this.syncEveryMs);
  }

  watch(conversationId) {
    this.watching = conversationId;
    this.send({ type: "watch", conversation: conversationId });
  }

  typing() {
    this.send({ type: "typing" });
  }

  stopTyping() {
    this.send({ type: "stop_typing" });
  }
}
