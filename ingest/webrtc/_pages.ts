/**
 * The two browser pages: a player (WHEP, falling back to HLS through hls.js) and a camera
 * publisher (WHIP). Both read an optional `?token=` and send it as a Bearer token.
 */

const STYLE = `body{margin:0;background:#111;color:#ddd;font:14px system-ui,sans-serif}
video{display:block;width:100vw;max-height:calc(100vh - 2.5em);background:#000}
#status{padding:.5em 1em}button{margin-left:1em}`;

/** Shared script: the endpoint's POST with the offer and the session's DELETE. */
const SIGNALLING = `const token = new URLSearchParams(location.search).get("token");
const auth = token ? { authorization: "Bearer " + token } : {};
const status = (text) => (document.getElementById("status").textContent = text);
async function negotiate(pc, endpoint) {
  await pc.setLocalDescription(await pc.createOffer());
  const res = await fetch(endpoint, {
    method: "POST",
    headers: { "content-type": "application/sdp", ...auth },
    body: pc.localDescription.sdp,
  });
  if (res.status !== 201) throw new Error(res.status + " " + (await res.text()).trim());
  const session = new URL(res.headers.get("location"), location.href).href;
  addEventListener("pagehide", () => fetch(session, { method: "DELETE", headers: auth, keepalive: true }));
  await pc.setRemoteDescription({ type: "answer", sdp: await res.text() });
  return session;
}
function connected(pc, ms) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error("no connection in " + ms + " ms")), ms);
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected") { clearTimeout(timer); resolve(); }
      if (pc.connectionState === "failed") { clearTimeout(timer); reject(new Error("connection failed")); }
    });
  });
}`;

function page(title: string, body: string, script: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>${title}</title><style>${STYLE}</style></head>
<body>${body}<div id="status">starting…</div>
<script type="module">
${SIGNALLING}
${script}
</script></body></html>
`;
}

/** The player page for `app/stream`; names are already checked to be URL-safe. */
export function playerPage(app: string, stream: string): string {
  const key = `${app}/${stream}`;
  return page(
    `${key} · arcly-stream`,
    `<video id="video" autoplay muted playsinline controls></video>`,
    `const video = document.getElementById("video");
async function playWhep() {
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  globalThis.arclyPeer = pc; // for getStats() from the console or a test
  pc.addTransceiver("video", { direction: "recvonly" });
  pc.addTransceiver("audio", { direction: "recvonly" });
  const media = new MediaStream();
  pc.ontrack = (event) => { media.addTrack(event.track); video.srcObject = media; };
  await negotiate(pc, "/${key}/whep");
  await connected(pc, 8000);
  status("${key}: WebRTC (WHEP)");
}
async function playHls() {
  const src = "/${key}/index.m3u8" + (token ? "?token=" + encodeURIComponent(token) : "");
  if (video.canPlayType("application/vnd.apple.mpegurl")) { video.src = src; return; }
  await new Promise((resolve, reject) => {
    const script = document.createElement("script");
    script.src = "/assets/hls.min.js";
    script.onload = resolve;
    script.onerror = () => reject(new Error("hls.js did not load"));
    document.head.append(script);
  });
  if (!globalThis.Hls?.isSupported()) throw new Error("this browser plays neither WebRTC nor HLS");
  const hls = new Hls({ lowLatencyMode: true });
  hls.loadSource(src);
  hls.attachMedia(video);
}
try {
  await playWhep();
} catch (error) {
  status("${key}: WebRTC failed (" + error.message + "), trying HLS");
  try {
    await playHls();
    status("${key}: HLS");
  } catch (hlsError) {
    status("${key}: " + hlsError.message);
  }
}`,
  );
}

/** The camera publisher page for `app/stream`. */
export function publishPage(app: string, stream: string): string {
  const key = `${app}/${stream}`;
  return page(
    `publish ${key} · arcly-stream`,
    `<video id="video" autoplay muted playsinline></video>`,
    `try {
  const camera = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
  document.getElementById("video").srcObject = camera;
  const pc = new RTCPeerConnection({ bundlePolicy: "max-bundle" });
  globalThis.arclyPeer = pc; // for getStats() from the console or a test
  for (const track of camera.getTracks()) {
    const transceiver = pc.addTransceiver(track, { direction: "sendonly", streams: [camera] });
    const codecs = RTCRtpSender.getCapabilities(track.kind)?.codecs ?? [];
    const preferred = track.kind === "video"
      ? codecs.filter((c) => /h264/i.test(c.mimeType) && /packetization-mode=1/.test(c.sdpFmtpLine ?? ""))
      : codecs.filter((c) => /opus/i.test(c.mimeType));
    if (preferred.length && transceiver.setCodecPreferences) transceiver.setCodecPreferences(preferred);
  }
  const session = await negotiate(pc, "/${key}/whip");
  await connected(pc, 8000);
  status("publishing ${key}");
  const stop = document.createElement("button");
  stop.textContent = "stop";
  stop.onclick = async () => {
    await fetch(session, { method: "DELETE", headers: auth });
    pc.close();
    camera.getTracks().forEach((t) => t.stop());
    status("stopped");
  };
  document.getElementById("status").append(stop);
} catch (error) {
  status("cannot publish ${key}: " + error.message);
}`,
  );
}
