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
