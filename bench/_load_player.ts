/**
 * The load players in `bench/` (`_load_player.c`: N RTMP, HTTP-FLV or RTSP players in one
 * epoll loop; `_load_srt_lite.c`: N SRT readers on shared UDP sockets; `_load_srt.c`: N libsrt
 * readers), built with gcc for the benchmarks that drive them.
 *
 * @module
 */

/** Build the load player `source` (a C file in bench/, linked with `libs`) into `dir`. */
export async function buildLoadPlayer(
  dir: string,
  source = "_load_player.c",
  libs: string[] = [],
): Promise<string> {
  const out = `${dir}/${source.replace(/^_|\.c$/g, "")}`;
  const path = new URL(`./${source}`, import.meta.url).pathname;
  const { success, stderr } = await new Deno.Command("gcc", {
    args: ["-O2", "-o", out, path, ...libs],
  }).output();
  if (!success) throw new Error(`gcc failed:\n${new TextDecoder().decode(stderr)}`);
  return out;
}
