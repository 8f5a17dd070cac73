// Reading a response body chunk by chunk, ended at once by an abort.

/**
 * The chunks of `response`'s body. An abort of `signal` ends the reading at once with the
 * signal's reason and cancels the body: a fetch implementation's own read may stay pending
 * after an abort (undici's can), and a load waiting on it would never settle.
 */
export async function* bodyChunks(response, signal) {
  signal?.throwIfAborted();
  if (!response.body) {
    yield new Uint8Array(await response.arrayBuffer());
    return;
  }
  const reader = response.body.getReader();
  let onAbort;
  const aborted = new Promise((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  // Handled here too: an abort after the last read rejects nothing that is awaited.
  aborted.catch(() => {});
  let finished = false;
  try {
    for (;;) {
      const { done, value } = await Promise.race([reader.read(), aborted]);
      if (done) break;
      yield value;
      signal?.throwIfAborted();
    }
    finished = true;
  } finally {
    signal?.removeEventListener("abort", onAbort);
    if (!finished) reader.cancel().catch(() => {});
  }
}
