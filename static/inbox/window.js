// Reply-window countdowns (§3.1), ticking in the browser. The server renders
// each badge from `wechat.window.describe`; this keeps the same format
// ("47h12m", "12 min", "40 s") so the label never jumps on a refresh.

export function countdown(secondsLeft) {
  if (secondsLeft >= 3600) {
    const hours = Math.floor(secondsLeft / 3600);
    const minutes = Math.floor((secondsLeft % 3600) / 60);
    return `${hours}h${String(minutes).padStart(2, "0")}m`;
  }
  if (secondsLeft >= 60) return `${Math.floor(secondsLeft / 60)} min`;
  return `${Math.max(Math.floor(secondsLeft), 1)} s`;
}

function format(template, values) {
  return template.replace(/%\((\w+)\)s/g, (_match, key) => String(values[key]));
}

export function label(strings, expiresAt, remaining, now = Date.now()) {
  if (!expiresAt) return { open: false, text: strings.closed };
  const left = (Date.parse(expiresAt) - now) / 1000;
  if (left <= 0) return { open: false, text: strings.closed };
  const n = remaining === "" || remaining === null || remaining === undefined ? "∞" : remaining;
  return { open: true, text: format(strings.left, { countdown: countdown(left), n }) };
}

export function tickBadges(root, strings, onClose) {
  root.querySelectorAll("[data-window]").forEach((badge) => {
    if (badge.dataset.open !== "1") return;
    const { open, text } = label(strings, badge.dataset.expiresAt, badge.dataset.remaining);
    if (badge.textContent !== text) badge.textContent = text;
    if (!open) {
      badge.dataset.open = "0";
      badge.classList.add("closed");
      if (onClose) onClose(badge);
    }
  });
}

export { format };
