/**
 * The server config: checking and defaults (resolveConfig), config files with errors that
 * name file, line and key (parseConfigFile, fileLayer, explainConfigError), layers (a later
 * one wins), the JSON Schema against the example config, and path matching.
 */

import assert from "node:assert/strict";
import { Ajv } from "ajv";
import {
  ConfigError,
  ConfigFileError,
  DEFAULT_CONFIG,
  explainConfigError,
  fileLayer,
  layerConfigs,
  parseConfigFile,
  PathRules,
  PROTOCOL_OPTIONS,
  readConfigFile,
  resolveConfig,
  type ServerConfig,
} from "../../server/mod.ts";
import schema from "../../server/config.schema.json" with { type: "json" };
import accessSchema from "../../server/access/access.schema.json" with { type: "json" };

const EXAMPLE = new URL("../../arcly.example.yml", import.meta.url).pathname;

/** The lines `serve` prints for `text` as a config file (none when it would run). */
function fileErrors(text: string): string[] {
  const file = parseConfigFile(text, "arcly.yml");
  try {
    resolveConfig(file.config);
    return [];
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    return explainConfigError(error, fileLayer(file));
  }
}

Deno.test("no config is the defaults: today's cli.ts serve ports, ts segments, app live", () => {
  const config = resolveConfig({});
  assert.deepEqual(config.listen, {
    rtmp: { hostname: "0.0.0.0", port: 1935 },
    rtsp: { hostname: "0.0.0.0", port: 8554 },
    srt: { hostname: "0.0.0.0", port: 8890 },
    http: { hostname: "0.0.0.0", port: 8888 },
    rtmps: undefined,
    rtsps: undefined,
    https: undefined,
  });
  assert.equal(config.tls, undefined);
  assert.equal(config.rtpPort, 8000);
  assert.equal(config.segmentType, "ts");
  assert.equal(config.partDuration, undefined);
  assert.equal(config.recordDir, undefined);
  assert.deepEqual(config.apps, ["live"]);
  assert.equal(config.quiet, false);
  assert.equal(config.playCoalesceMs, 40, "cli.ts serve's --play-coalesce-ms default");
  assert.equal(config.workers, navigator.hardwareConcurrency, "every core by default");
  assert.deepEqual(config.paths.match("live/x"), { record: false });
});

Deno.test("the schema's defaults are DEFAULT_CONFIG's", () => {
  const props = schema.properties as Record<string, { properties?: Record<string, unknown> }>;
  const defaults = (node: unknown) => (node as { default?: unknown }).default;
  assert.equal(defaults(props.quiet), DEFAULT_CONFIG.quiet);
  assert.deepEqual(defaults(props.apps), DEFAULT_CONFIG.apps);
  for (const name of ["rtmp", "rtsp", "srt", "http"] as const) {
    assert.equal(defaults(props[name].properties!.listen), DEFAULT_CONFIG[name].listen, name);
  }
  assert.equal(defaults(props.rtsp.properties!.rtpPort), DEFAULT_CONFIG.rtsp.rtpPort);
  assert.equal(defaults(props.hls.properties!.segmentType), DEFAULT_CONFIG.hls.segmentType);
});

Deno.test("every protocol option has a key in the schema, and only the options given are passed on", () => {
  const props = schema.properties as unknown as Record<string, { properties: object }>;
  for (const [section, keys] of Object.entries(PROTOCOL_OPTIONS)) {
    for (const key of keys) assert.ok(key in props[section].properties, `${section}.${key}`);
  }
  const config = resolveConfig({
    rtmp: { listen: 1, idleTimeoutMs: 5000 },
    rtsp: { udp: false, rtpPort: 9000 },
    http: { listen: "off", keepAliveTimeoutMs: 1000 },
    hls: { targetDuration: 4, partDuration: 3, segmentType: "fmp4" },
  });
  assert.deepEqual(config.options, {
    rtmp: { idleTimeoutMs: 5000 },
    rtsp: { udp: false },
    srt: {},
    http: { keepAliveTimeoutMs: 1000 },
    httpFlv: {},
    webrtc: {},
    hls: { targetDuration: 4 },
  });
  assert.throws(() => resolveConfig({ hls: { partDuration: 3, segmentType: "fmp4" } }), {
    message: "hls.partDuration: must be below the target duration, hls.targetDuration (2 s)",
  });
  assert.throws(() => resolveConfig({ srt: { maxLag: 0 } }), {
    message: "srt.maxLag: must be >= 1",
  });
  assert.equal(resolveConfig({ workers: 3 }).workers, 3);
  assert.throws(() => resolveConfig({ workers: 0 }), { message: "workers: must be >= 1" });
  assert.throws(() => resolveConfig({ workers: 1.5 }), {
    message: "workers: must be integer, not 1.5",
  });
});

Deno.test("the example config is valid by the schema (as an editor checks it) and runs", async () => {
  const { config } = await readConfigFile(EXAMPLE);
  // As an editor reads it: the access rules' schema where config.schema.json's $ref says.
  const validate = new Ajv({ allErrors: true, strictRequired: false })
    .addSchema({ ...accessSchema, $id: undefined }, "access/access.schema.json")
    .compile(schema);
  assert.ok(validate(config), JSON.stringify(validate.errors));
  const resolved = resolveConfig(config);
  assert.equal(resolved.recordDir, "recordings");
  assert.equal(resolved.paths.match("live/lobby").gopCache, 0);
  assert.equal(resolved.paths.match("live/test-1").record, false);
  assert.equal(resolved.paths.match("live/cam").record, true);
  assert.equal(resolved.access?.grants?.length, 3);
  // The schema refuses what resolveConfig refuses, so an editor flags it too.
  assert.equal(validate({ ...config, rtmp: { listen: "nope" } }), false);
  assert.equal(validate({ ...config, bogus: 1 }), false);
});

Deno.test("config file errors name the file, the line and column, the key and the reason", () => {
  assert.deepEqual(
    fileErrors(
      [
        "rtmp:",
        "  listen: nope",
        "hls:",
        "  segmentType: mp4",
        "  partDuration: fast",
        "bogus: 1",
        "paths:",
        "  live/*:",
        "    gopCache: -1",
      ].join("\n"),
    ),
    [
      "arcly.yml:6:1: bogus: unknown setting",
      'arcly.yml:2:3: rtmp.listen: "nope" is not PORT, HOST:PORT, [V6]:PORT, or off / false',
      'arcly.yml:4:3: hls.segmentType: must be one of ts, fmp4, not "mp4"',
      'arcly.yml:5:3: hls.partDuration: must be number, not "fast"',
      "arcly.yml:9:5: paths.live/*.gopCache: must be >= 0",
    ],
  );
  // Rules no schema states are named the same way.
  assert.deepEqual(fileErrors("hls:\n  partDuration: 0.5\n"), [
    "arcly.yml:2:3: hls.partDuration: Low-Latency HLS needs hls.segmentType fmp4",
  ]);
  assert.deepEqual(fileErrors("webrtc:\n  ports: 9-3\n"), [
    'arcly.yml:2:3: webrtc.ports: a UDP port range is MIN-MAX with 1 <= MIN < MAX <= 65535, not "9-3"',
  ]);
  assert.deepEqual(fileErrors("paths:\n  live/a:\n    record: true\n"), [
    "arcly.yml:3:5: paths.live/a.record: needs record.dir to record to",
  ]);
  assert.deepEqual(fileErrors("paths:\n  '~(':\n    record: false\n"), [
    `arcly.yml:2:3: paths.~(: path pattern "~(": Invalid regular expression: /(/u: Unterminated group`,
  ]);
  assert.deepEqual(fileErrors("rtmp:\n  listen: 1936\n# nothing else\nwebrtc:\n"), []);
});

Deno.test("YAML that does not parse, repeated keys and a non-mapping are refused with a place", () => {
  const refused = (text: string) => {
    try {
      parseConfigFile(text, "arcly.yml");
    } catch (error) {
      if (error instanceof ConfigFileError) return error.message;
      throw error;
    }
    assert.fail(`accepted ${JSON.stringify(text)}`);
  };
  assert.match(refused("rtmp:\n  listen: 1\nrtmp:\n  listen: 2\n"), /^arcly\.yml:3:1: .*unique/);
  assert.match(refused("rtmp: [\n"), /^arcly\.yml:2:1: /);
  assert.match(refused("x: 'open\n"), /^arcly\.yml:2:1: Missing closing 'quote/);
  assert.match(refused("- 1\n- 2\n"), /^arcly\.yml:1:1: a config file holds a mapping/);
  assert.deepEqual(parseConfigFile("", "arcly.yml").config, {}, "an empty file is no setting");
  assert.deepEqual(parseConfigFile('{"rtmp": {"listen": 5}}', "a.json").config, {
    rtmp: { listen: 5 },
  }, "JSON is YAML");
});

Deno.test("layers: a later one wins key by key; errors name the layer that set the value", () => {
  const file = fileLayer(parseConfigFile("rtmp:\n  listen: 1\nsrt:\n  listen: 2\n", "a.yml"));
  const layer = (config: object, name: string) => ({ config, name: () => name });
  const merged = layerConfigs([
    file,
    layer({ rtmp: { listen: "x" }, http: { listen: 3 } }, "ARCLY_RTMP"),
    layer({ http: { listen: 4 } }, "--http"),
  ]);
  assert.deepEqual(merged.config, {
    rtmp: { listen: "x" },
    srt: { listen: 2 },
    http: { listen: 4 },
  });
  assert.equal(merged.name(["rtmp", "listen"]), "ARCLY_RTMP");
  assert.equal(merged.name(["srt", "listen"]), "a.yml:4:3: srt.listen");
  assert.equal(merged.name(["http", "listen"]), "--http");
  assert.equal(merged.name(["rtsp", "listen"]), undefined);
  assert.throws(() => resolveConfig(merged.config), (error) => {
    assert.ok(error instanceof ConfigError);
    assert.deepEqual(explainConfigError(error, merged), [
      'ARCLY_RTMP: "x" is not PORT, HOST:PORT, [V6]:PORT, or off / false',
    ]);
    return true;
  });
});

Deno.test("paths: an exact name wins, then the first pattern in order; globs and ~regex", () => {
  const paths = new PathRules({
    "live/*": { gopCache: 1 },
    "~^live/cam[0-9]+$": { gopCache: 2 },
    "live/cam1": { gopCache: 3 },
    "**": { gopCache: 4 },
    "a/**": { gopCache: 5 },
  }, true);
  assert.equal(paths.match("live/cam1").gopCache, 3, "exact beats every pattern");
  assert.equal(paths.match("live/cam2").gopCache, 1, "live/* comes before the regex");
  assert.equal(paths.match("live/cam2").pattern, "live/*");
  assert.equal(paths.match("live/a/b").gopCache, 4, "* stays within a name; ** does not");
  assert.equal(paths.match("a/b/c").gopCache, 4, "** was written before a/**");
  assert.equal(paths.match("live/x").record, true, "record follows record.dir by default");
  const regex = new PathRules({ "~cam": { record: false }, "live/a.b": {} }, true);
  assert.equal(regex.match("x/webcam").record, false, "a regex is unanchored");
  assert.equal(regex.match("live/aXb").pattern, undefined, "a dot in a name is a dot");
  assert.throws(() => new PathRules({ cam: {} }, false), /a path is APP\/NAME/);
});

Deno.test("paths: a source takes an exact path in a known app; its settings get defaults", () => {
  const config = resolveConfig({
    paths: {
      "live/cam": { source: "rtsp://u:p@10.0.0.9/stream1", sourceOnDemand: true },
      "live/relay": { source: "srt://origin:8890?streamid=read:live/x", rtspTransport: "tcp" },
      "live/*": { gopCache: 10 },
    },
  });
  assert.deepEqual([...config.paths.sources()], [
    ["live/cam", {
      url: "rtsp://u:p@10.0.0.9/stream1",
      onDemand: true,
      closeAfterMs: 10_000,
      retryWindowMs: 10_000,
      rtspTransport: "automatic",
    }],
    ["live/relay", {
      url: "srt://origin:8890?streamid=read:live/x",
      onDemand: false,
      closeAfterMs: 10_000,
      retryWindowMs: 10_000,
      rtspTransport: "tcp",
    }],
  ]);
  assert.equal(config.paths.match("live/other").source, undefined);
  const refused = (paths: ServerConfig["paths"], apps?: string[]) => {
    try {
      resolveConfig({ paths, apps });
      return undefined;
    } catch (error) {
      if (!(error instanceof ConfigError)) throw error;
      const [first] = error.problems;
      return `${first.path.join(".")}: ${first.reason}`;
    }
  };
  assert.equal(
    refused({ "live/*": { source: "rtsp://cam/1" } }),
    "paths.live/*.source: a source publishes one stream: give it an exact APP/NAME path",
  );
  assert.equal(
    refused({ "live/x": { sourceOnDemand: true } }),
    "paths.live/x.sourceOnDemand: needs a source",
  );
  assert.equal(
    refused({ "cams/x": { source: "rtmp://a/b/c" } }),
    "paths.cams/x.source: app cams is not one of apps",
  );
  assert.equal(refused({ "cams/x": { source: "rtmp://a/b/c" } }, ["cams"]), undefined);
  assert.match(refused({ "live/x": { source: "ftp://a/b" } }) ?? "", /^paths\.live\/x\.source: /);
  assert.match(
    refused({ "live/x": { source: "rtsp://a/b", sourceRetryWindowMs: 60_000 } }) ?? "",
    /sourceRetryWindowMs/,
  );
});
