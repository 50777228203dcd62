// A short "ding" for new messages, generated here as a WAV so the project
// ships no binary assets. Browsers only let a page play sound after the user
// interacted with it; until then the tab-title count is the signal.

function wavBlob({ frequency = 880, durationMs = 180, sampleRate = 22050 } = {}) {
  const samples = Math.floor((sampleRate * durationMs) / 1000);
  const buffer = new ArrayBuffer(44 + samples * 2);
  const view = new DataView(buffer);
  const text = (offset, value) => [...value].forEach((c, i) => view.setUint8(offset + i, c.charCodeAt(0)));
  text(0, "RIFF");
  view.setUint32(4, 36 + samples * 2, true);
  text(8, "WAVE");
  text(12, "fmt ");
  view.setUint32(16, 16, true); // PCM header size
  view.setUint16(20, 1, true); // PCM
  view.setUint16(22, 1, true); // mono
  view.setUint32(24, sampleRate, true);
  view.setUint32(28, sampleRate * 2, true);
  view.setUint16(32, 2, true);
  view.setUint16(34, 16, true);
  text(36, "data");
  view.setUint32(40, samples * 2, true);
  for (let i = 0; i < samples; i += 1) {
    // Two partials and a fast decay: a bell rather than a beep.
    const t = i / sampleRate;
    const envelope = Math.exp(-t * 18) * Math.min(1, i / 80);
    const value = (Math.sin(2 * Math.PI * frequency * t) * 0.6 + Math.sin(2 * Math.PI * frequency * 1.5 * t) * 0.25) * envelope;
    view.setInt16(44 + i * 2, Math.max(-1, Math.min(1, value)) * 0x5fff, true);
  }
  return new Blob([buffer], { type: "audio/wav" });
}

let url = null;
let context = null;
let decoded = null;

async function viaWebAudio() {
  const AudioCtx = window.AudioContext || window.webkitAudioContext;
  if (!AudioCtx) return false;
  context = context || new AudioCtx();
  if (context.state === "suspended") await context.resume();
  if (!decoded) decoded = await context.decodeAudioData(await wavBlob().arrayBuffer());
  const source = context.createBufferSource();
  source.buffer = decoded;
  source.connect(context.destination);
  source.start();
  return true;
}

export async function ding() {
  try {
    if (await viaWebAudio()) return;
  } catch (error) {
    // fall through to an <audio> element
  }
  try {
    url = url || URL.createObjectURL(wavBlob());
    await new Audio(url).play();
  } catch (error) {
    // Autoplay refused before any user gesture; the title count still shows.
  }
}
