/**
 * Push relays from the config, end to end: ffmpeg publishes to node A, A's `paths` push the
 * stream to node B over RTMP and over SRT (and to two dead targets), ffmpeg plays both
 * copies from B and the original from A; B goes away and comes back on the same ports, and
 * A's relays reconnect, their state in A's `/v1/streams`.
 */

import assert from "node:assert/strict";
import { serve, type Server, type ServerConfig } from "../../server/mod.ts";
import { assertPlaysAv, Procs, publishLive, recordFlv } from "../_util/ffmpeg.ts";
import { LogLines } from "../_util/log.ts";
import { startServer, waitFor } from "../_util/serve.ts";
import { testsWith } from "../_util/tools.ts";
import { freeUdpPort } from "../_util/ports.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

interface Relay {
  target: string;
  state: string;
  frames: number;
  connections: number;
  lastError?: string;
}

/** The relays A's `/v1/streams` shows for live/cam, by target. */
async function relays(httpPort: number): Promise<Map<string, Relay>> {
  const streams = await (await fetch(`http://127.0.0.1:${httpPort}/v1/streams`)).json();
  const cam = streams.find((s: { key: string }) => s.key === "live/cam");
  return new Map((cam?.relays ?? []).map((r: Relay) => [r.target, r]));
}

/** Node B: RTMP and SRT on the given ports. */
async function nodeB(rtmpPort: number, srtPort: number, log: LogLines): Promise<Server> {
  const config: ServerConfig = {
    rtmp: { listen: `127.0.0.1:${rtmpPort}` },
    srt: { listen: `127.0.0.1:${srtPort}` },
    rtsp: { listen: "off" },
    http: { listen: "off" },
  };
  const server = serve(config, { logger: log });
  await server.ready;
  return server;
}

test.ffmpeg("push relays: A pushes to B over RTMP and SRT, dead targets aside; B restarts and A reconnects", async () => {
  const procs = new Procs();
  const logB = new LogLines();
  const rtmpB = (() => {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const { port } = listener.addr as Deno.NetAddr;
    listener.close();
    return port;
  })();
  const srtB = await freeUdpPort();
  const deadSrt = await freeUdpPort();
  let b: Server | undefined = await nodeB(rtmpB, srtB, logB);
  const viaRtmp = `rtmp://127.0.0.1:${rtmpB}/live/viartmp`;
  const viaRtmpShown = `rtmp://127.0.0.1:${rtmpB}/live/…`; // the stream key hidden
  const viaSrt = `srt://127.0.0.1:${srtB}?streamid=publish:live/viasrt&latency=200`;
  const deadRtmp = `rtmp://127.0.0.1:1/live/dead`;
  const deadSrtUrl = `srt://127.0.0.1:${deadSrt}?streamid=publish:live/dead`;
  const a = await startServer(["rtmp", "http"], {
    paths: { "live/cam": { push: [viaRtmp, viaSrt, deadRtmp, deadSrtUrl] } },
  });
  try {
    const publisher = publishLive(procs, `rtmp://127.0.0.1:${a.ports.rtmp}/live/cam`, 30);
    const relaying = (target: string) => async () => {
      const relay = (await relays(a.ports.http!)).get(target);
      return relay?.state === "relaying" && relay.frames > 0 ? relay : undefined;
    };
    await waitFor("the RTMP relay", relaying(viaRtmpShown));
    await waitFor("the SRT relay", relaying(`srt://127.0.0.1:${srtB}?…`));
    const [fromRtmp, fromSrt, local] = await Promise.all([
      recordFlv(procs, `rtmp://127.0.0.1:${rtmpB}/live/viartmp`, 3),
      recordFlv(procs, `srt://127.0.0.1:${srtB}?streamid=read:live/viasrt`, 3),
      recordFlv(procs, `rtmp://127.0.0.1:${a.ports.rtmp}/live/cam`, 3),
    ]);
    await assertPlaysAv(fromRtmp, "B's copy over RTMP", 50);
    await assertPlaysAv(fromSrt, "B's copy over SRT", 50);
    await assertPlaysAv(local, "A's own player, dead targets notwithstanding", 50);
    const dead = await relays(a.ports.http!);
    assert.notEqual(dead.get("rtmp://127.0.0.1:1/live/…")?.state, "relaying");
    assert.ok(dead.get("rtmp://127.0.0.1:1/live/…")?.lastError, JSON.stringify([...dead.values()]));
    assert.equal(dead.get(`srt://127.0.0.1:${deadSrt}?…`)?.connections, 0);

    // B goes away: A's live relays notice; B comes back on the same ports: they reconnect.
    await b.close();
    b = undefined;
    await waitFor("the relays noticing", async () => {
      const now = await relays(a.ports.http!);
      return now.get(viaRtmpShown)?.state !== "relaying" &&
          now.get(`srt://127.0.0.1:${srtB}?…`)?.state !== "relaying"
        ? now
        : undefined;
    });
    b = await nodeB(rtmpB, srtB, logB);
    const again = (target: string) => async () => {
      const relay = (await relays(a.ports.http!)).get(target);
      return relay?.state === "relaying" && relay.connections >= 2 ? relay : undefined;
    };
    const rtmpAgain = await waitFor("the RTMP relay again", again(viaRtmpShown));
    const srtAgain = await waitFor("the SRT relay again", again(`srt://127.0.0.1:${srtB}?…`));
    assert.ok(rtmpAgain.lastError && srtAgain.lastError, "the drops were recorded");
    const [rtmp2, srt2] = await Promise.all([
      recordFlv(procs, `rtmp://127.0.0.1:${rtmpB}/live/viartmp`, 2),
      recordFlv(procs, `srt://127.0.0.1:${srtB}?streamid=read:live/viasrt`, 2),
    ]);
    await assertPlaysAv(rtmp2, "B's copy over RTMP after the restart", 50);
    await assertPlaysAv(srt2, "B's copy over SRT after the restart", 50);
    procs.killAll();
    await publisher;
    await waitFor("the relays stopping with the stream", async () => {
      const streams = await (await fetch(`http://127.0.0.1:${a.ports.http}/v1/streams`)).json();
      return streams.length === 0 ? true : undefined;
    });
  } finally {
    procs.killAll();
    await a.stop();
    await b?.close();
  }
});
