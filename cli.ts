/**
 * The arcly-stream command line.
 *
 * ```sh
 * deno run -A cli.ts serve              # the live server on embedded defaults
 * deno run -A cli.ts package IN --out D # a file (FLV or MPEG-TS) into HLS
 * ```
 *
 * This is the only module that reads flags, the environment and config files.
 *
 * @module
 */

const USAGE = `arcly-stream: a live-media streaming server

Usage:
  deno run -A cli.ts serve      run the server on embedded defaults
  deno run -A cli.ts --help     show this help
`;

/** Run the command line with `args`; resolves to the process exit code. */
export function main(args: string[]): Promise<number> {
  const [command] = args;
  switch (command) {
    case undefined:
    case "help":
    case "--help":
    case "-h":
      console.log(USAGE);
      return Promise.resolve(0);
    case "serve":
      console.error("serve: the server is not built yet; see the open issues");
      return Promise.resolve(2);
    default:
      console.error(`unknown command: ${command}\n\n${USAGE}`);
      return Promise.resolve(1);
  }
}

if (import.meta.main) Deno.exit(await main(Deno.args));
