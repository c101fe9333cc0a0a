/**
 * The load player `bench/_load_player.c` (N RTMP or HTTP-FLV players in one epoll loop),
 * built with gcc for the benchmarks that drive it.
 *
 * @module
 */

/** Build the load player into `dir`; resolves with its path. */
export async function buildLoadPlayer(dir: string): Promise<string> {
  const out = `${dir}/load_player`;
  const source = new URL("./_load_player.c", import.meta.url).pathname;
  const { success, stderr } = await new Deno.Command("gcc", {
    args: ["-O2", "-o", out, source],
  }).output();
  if (!success) throw new Error(`gcc failed:\n${new TextDecoder().decode(stderr)}`);
  return out;
}
