/**
 * AudioTranscoder with real codecs: AAC → Opus and Opus → AAC, timestamps kept on the
 * source's timeline, and what comes out decodes in ffmpeg as a tone, not silence.
 */

import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { FlvDecoder } from "../../../media/flv/mod.ts";
import { TsDecoder, TsEncoder } from "../../../media/ts/mod.ts";
import { AudioTranscoder, type TranscodeTarget } from "../../../media/transcode/mod.ts";
import { parseOpusHead } from "../../../media/codec/opus.ts";
import { parseAudioSpecificConfig } from "../../../media/codec/aac.ts";
import { decodeCheck, ffmpeg, makeFixture, sine, tempPath } from "../../_util/ffmpeg.ts";
import { concat } from "../../_util/bytes.ts";
import { LogLines } from "../../_util/log.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

/** Far past 2^33 ticks: the transcoder must not lose what MPEG-TS cannot carry. */
const START = 2 ** 33 + 123_456;

async function sourceFrames(codec: "aac" | "opus"): Promise<MediaFrame[]> {
  const frames: MediaFrame[] = [];
  const shift = (f: MediaFrame) => frames.push({ ...f, pts: f.pts + START, dts: f.dts + START });
  if (codec === "aac") {
    const file = await makeFixture("tone-aac.flv", [
      ...sine({ duration: 3 }),
      ..."-ac 2 -c:a aac -f flv".split(" "),
    ]);
    const decoder = new FlvDecoder();
    decoder.decode(await Deno.readFile(file), shift);
    decoder.flush();
  } else {
    const file = await makeFixture("tone-opus.ts", [
      ...sine({ duration: 3 }),
      ..."-ac 2 -c:a libopus -f mpegts".split(" "),
    ]);
    const decoder = new TsDecoder();
    decoder.decode(await Deno.readFile(file), shift);
    decoder.flush(shift);
  }
  const first = frames[0].pts;
  return frames.map((f) => ({
    ...f,
    track: 3,
    pts: f.pts - first + START,
    dts: f.dts - first + START,
  }));
}

async function transcode(frames: MediaFrame[], to: TranscodeTarget, log: LogLines) {
  const transcoder = new AudioTranscoder({ to, logger: log, name: "live/tone" });
  const out: MediaFrame[] = [];
  const reading = (async () => {
    for await (const frame of transcoder.readable) out.push(frame);
  })();
  const writer = transcoder.writable.getWriter();
  for (const frame of frames) await writer.write(frame);
  await writer.close();
  await reading;
  return { out, stats: transcoder.stats };
}

/** Mean volume in dB of an audio file, as ffmpeg's volumedetect measures it. */
async function meanVolume(path: string): Promise<number> {
  const out = await ffmpeg(["-i", path, "-af", "volumedetect", "-f", "null", "-"]);
  const match = /mean_volume: (-?[\d.]+) dB/.exec(out.stderr);
  assert.ok(match, out.stderr);
  return Number(match[1]);
}

for (
  const [from, to, step] of [["aac", "opus", 1800], ["opus", "aac", 1920]] as const
) {
  test.ffmpeg(`transcode: ${from} → ${to} keeps the timeline and the tone`, async () => {
    const source = await sourceFrames(from);
    const media = (fs: MediaFrame[]) => fs.filter((f) => !(f.flags & FrameFlags.CONFIG));
    const log = new LogLines();
    const { out, stats } = await transcode(source, to, log);
    assert.equal(stats.dropped, 0);
    assert.ok(out.length > 0, `nothing came out:\n${log.lines.join("\n")}`);
    assert.ok(out[0].flags & FrameFlags.CONFIG, "a CONFIG frame first");
    if (to === "opus") {
      assert.equal(parseOpusHead(out[0].data).channels, 2);
    } else {
      const asc = parseAudioSpecificConfig(out[0].data);
      assert.deepEqual([asc.sampleRate, asc.channelConfiguration], [48000, 2]);
    }
    const frames = media(out);
    assert.ok(frames.every((f) => f.codec === to && f.kind === "audio" && f.track === 3));
    // one frame duration apart, on the source's timeline: the first within a frame of the
    // source's first, the last within a frame of the source's end
    for (let i = 1; i < frames.length; i++) {
      assert.equal(
        frames[i].pts - frames[i - 1].pts,
        step,
        `frame ${i}: ${frames.slice(0, 8).map((f) => f.pts - START)}`,
      );
    }
    const input = media(source);
    const inStep = input[1].pts - input[0].pts;
    assert.ok(Math.abs(frames[0].pts - input[0].pts) <= step, `starts at ${frames[0].pts - START}`);
    const end = input.at(-1)!.pts + inStep;
    assert.ok(
      Math.abs(frames.at(-1)!.pts + step - end) <= 2 * step,
      `ends at ${frames.at(-1)!.pts - START}`,
    );
    // what came out is a decodable 440 Hz tone, not silence
    const encoder = new TsEncoder({ video: null });
    const chunks = out.map((f) => encoder.encode({ ...f, pts: f.pts - START, dts: f.dts - START }));
    chunks.push(encoder.flush());
    const file = await tempPath(`transcoded-${to}.ts`);
    await Deno.writeFile(file, concat(chunks.filter((c) => c !== undefined)));
    const check = await decodeCheck(file);
    assert.deepEqual([check.code, check.stderr], [0, ""]);
    const volume = await meanVolume(file);
    assert.ok(volume > -30, `mean volume ${volume} dB`);
  });
}
