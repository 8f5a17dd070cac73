// The real pocaduck-edge binary for the JS tests and benchmarks: one-shot commands, and the
// server on a loopback port, stopped with the process that started it.

import { spawn } from "node:child_process";
import { once } from "node:events";
import { homedir } from "node:os";
import { join } from "node:path";
import { createInterface } from "node:readline";

/** The binary of `profile` (`debug` for tests) in the cargo target dir, or `$POCADUCK_EDGE_BIN`. */
export function binary(profile = "debug") {
  if (process.env.POCADUCK_EDGE_BIN) return process.env.POCADUCK_EDGE_BIN;
  const target = process.env.CARGO_TARGET_DIR || join(homedir(), ".cache/pocaduck-edge/target");
  return join(target, profile, "pocaduck-edge");
}

/** Runs `pocaduck-edge args…` (in `env`) to completion; rejects with its stderr on failure. */
export async function run(args, { bin = binary(), env = process.env } = {}) {
  const child = spawn(bin, args, { stdio: ["ignore", "ignore", "pipe"], env });
  let stderr = "";
  child.stderr.on("data", (d) => (stderr += d));
  const [code] = await once(child, "exit");
  if (code !== 0) throw new Error(`pocaduck-edge ${args.join(" ")} exited ${code}: ${stderr}`);
}

/**
 * Starts `pocaduck-edge serve --addr 127.0.0.1:0 args…` and waits (bounded) for its first
 * line, `listening on URL`. Resolves to `{url, stop}`; `stop()` sends SIGTERM (the server
 * stops an emulator it started), then SIGKILL after 10 s, and resolves once it has exited.
 */
export async function serve(args = [], { bin = binary(), env = process.env, timeoutMs = 180_000 } = {}) {
  return listening(bin, ["serve", "--addr", "127.0.0.1:0", ...args], { env, timeoutMs });
}

/** The VastDB emulator's binary beside `binary(profile)`, or `$VASTDB_EMULATOR_BIN`. */
export function emulatorBinary(profile = "debug") {
  if (process.env.VASTDB_EMULATOR_BIN) return process.env.VASTDB_EMULATOR_BIN;
  return join(binary(profile), "..", "vastdb-emulator");
}

/**
 * Starts a `vastdb-emulator` on a loopback port over `dir` with its bucket `pocaduck`, signing
 * with `accessKey` and `secretKey`. Resolves to `{url, stop}` as `serve`.
 */
export async function emulate(dir, { accessKey, secretKey, bin = emulatorBinary(), timeoutMs = 60_000 }) {
  const args = ["--listen", "127.0.0.1:0", "--data", dir, "--access-key", accessKey, "--secret-key", secretKey, "--bucket", "pocaduck"];
  return listening(bin, args, { env: process.env, timeoutMs });
}

/** Starts `bin args…`, whose first line is `listening on URL`; resolves to `{url, stop}`. */
async function listening(bin, args, { env, timeoutMs }) {
  const child = spawn(bin, args, {
    stdio: ["ignore", "pipe", "inherit"],
    env,
  });
  const kill = () => child.kill("SIGKILL");
  process.once("exit", kill); // never outlive the process that started it
  const url = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      kill();
      reject(new Error(`no "listening on" line within ${timeoutMs} ms`));
    }, timeoutMs);
    child.once("exit", (code, signal) => {
      clearTimeout(timer);
      reject(new Error(`${bin} exited (${code ?? signal}) before listening`));
    });
    createInterface({ input: child.stdout }).once("line", (line) => {
      clearTimeout(timer);
      const m = /^listening on (http:\/\/\S+)$/.exec(line.trim());
      if (m) resolve(m[1]);
      else reject(new Error(`unexpected first line ${JSON.stringify(line)}`));
    });
  });
  child.stdout.resume(); // keep draining
  async function stop() {
    process.removeListener("exit", kill);
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = once(child, "exit");
    child.kill("SIGTERM");
    const timer = setTimeout(kill, 10_000);
    await exited;
    clearTimeout(timer);
  }
  return { url, stop };
}
