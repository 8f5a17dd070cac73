// The real pocaduck-edge server for the JS tests: started on a loopback port, stopped with
// the test process.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** The debug binary the test command builds (or `$POCADUCK_EDGE_BIN`). */
export function binary() {
  if (process.env.POCADUCK_EDGE_BIN) return process.env.POCADUCK_EDGE_BIN;
  const target = process.env.CARGO_TARGET_DIR ?? join(homedir(), ".cache/pocaduck-edge/target");
  return join(target, "debug/pocaduck-edge");
}

/** Runs `pocaduck-edge args…` to completion; rejects with its stderr on failure. */
export async function run(args) {
  const child = spawn(binary(), args, { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = await once(child, "exit");
  if (code !== 0) throw new Error(`pocaduck-edge ${args.join(" ")} exited ${code}: ${stderr}`);
}

/** Starts `pocaduck-edge serve --addr 127.0.0.1:0 args…`; resolves to `{url, stop}`. */
export async function serve(args = []) {
  const child = spawn(binary(), ["serve", "--addr", "127.0.0.1:0", ...args], {
    stdio: ["ignore", "pipe", "inherit"],
  });
  const stop = () => child.kill("SIGTERM");
  process.once("exit", stop);
  const lines = createInterface({ input: child.stdout });
  const timeout = setTimeout(() => child.kill("SIGKILL"), 60_000);
  for await (const line of lines) {
    clearTimeout(timeout);
    const url = line.trim().replace(/^listening on /, "");
    if (url === line.trim()) throw new Error(`unexpected first line ${line}`);
    return { url, stop };
  }
  throw new Error("the server exited before listening");
}
