// Debian's Chromium as the browser tests and benchmarks launch it.

/** The browser (`$CHROMIUM_BIN`, else Debian's). */
export const CHROMIUM = process.env.CHROMIUM_BIN || "/usr/bin/chromium";

/** Headless, without a GPU, network side-channels or a sandbox (CI runs as root). */
export const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

/**
 * Chromium as the browser tests drive it: a persistent context over a fresh profile in
 * `profileDir`, with the flags above (or `options.args`) and every wait bounded at 60 s.
 */
export async function launchChromium(profileDir, options = {}) {
  const { chromium } = await import("playwright-core");
  const context = await chromium.launchPersistentContext(profileDir, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    timeout: 60_000,
    ...options,
  });
  context.setDefaultTimeout(60_000);
  return context;
}
