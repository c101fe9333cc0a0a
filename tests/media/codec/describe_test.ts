import assert from "node:assert/strict";
import { FrameFlags, type MediaFrame } from "../../../mod.ts";
import { buildOpusHead, describeConfig } from "../../../media/codec/mod.ts";
import { FlvReader } from "../../../media/flv/mod.ts";
import { makeFixture, probePackets, sine, testsrc } from "../../_util/ffmpeg.ts";
import { testsWith } from "../../_util/tools.ts";

const test = await testsWith({ ffmpeg: ["ffmpeg", "ffprobe"] });

async function configsOf(path: string): Promise<MediaFrame[]> {
  const file = await Deno.open(path);
  const configs: MediaFrame[] = [];
  for await (const frame of file.readable.pipeThrough(new FlvReader())) {
    if (frame.flags & FrameFlags.CONFIG) configs.push(frame);
  }
  return configs;
}

test.ffmpeg("describeConfig reads what ffprobe reads from libx264 and AAC configs", async () => {
  const path = await makeFixture("describe-1280x720.flv", [
    ...testsrc({ size: "1280x720", rate: 30, duration: 1 }),
    ...sine({ sampleRate: 44100, duration: 1 }),
    ...["-c:v", "libx264", "-profile:v", "main", "-pix_fmt", "yuv420p", "-c:a", "aac", "-ac", "1"],
    ...["-f", "flv"],
  ]);
  const [video, audio] = await configsOf(path);
  const probe = await probePackets(path);
  const v = describeConfig(video);
  assert.equal(v.width, probe.find((s) => s.codecType === "video")!.info.width);
  assert.equal(v.height, 720);
  assert.match(v.codec, /^avc1\.4d40[0-9a-f]{2}$/, "main profile");
  assert.equal(v.frameRate, 30);
  assert.deepEqual(describeConfig(audio), {
    codec: "mp4a.40.2",
    sampleRate: 44100,
    channels: 1,
    samplesPerFrame: 1024,
  });
});

Deno.test("describeConfig: Opus, and clear errors for configs that do not parse", () => {
  const config = (codec: MediaFrame["codec"], data: Uint8Array): MediaFrame => ({
    track: 0,
    kind: codec === "h264" || codec === "h265" ? "video" : "audio",
    codec,
    pts: 0,
    dts: 0,
    flags: FrameFlags.CONFIG,
    data,
  });
  const head = buildOpusHead({
    version: 1,
    channels: 2,
    preSkip: 312,
    inputSampleRate: 48000,
    outputGain: 0,
    mappingFamily: 0,
  });
  assert.deepEqual(describeConfig(config("opus", head)), {
    codec: "opus",
    sampleRate: 48000,
    channels: 2,
  });
  assert.throws(
    () => describeConfig(config("h264", new Uint8Array([1, 0x64, 0, 0x1f]))),
    RangeError,
  );
  assert.throws(() => describeConfig(config("aac", new Uint8Array())), RangeError);
  assert.throws(() => describeConfig(config("mp3", new Uint8Array([1]))), TypeError);
});
