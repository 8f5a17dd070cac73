// Reading a response body, whole or chunk by chunk, ended at once by an abort: a fetch
// implementation's own read may stay pending after an abort (undici's can), and a load
// waiting on it would never settle.

/**
 * A promise rejected with `signal`'s reason when it aborts (handled, so that an abort after
 * the last read rejects nothing awaited), and `release`, which stops listening.
 */
function abortOf(signal) {
  let onAbort;
  const aborted = new Promise((_, reject) => {
    onAbort = () => reject(signal.reason);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
  aborted.catch(() => {});
  return { aborted, release: () => signal?.removeEventListener("abort", onAbort) };
}

/** `response`'s body whole, in one read; an abort of `signal` ends the wait at once. */
export async function wholeBody(response, signal) {
  signal?.throwIfAborted();
  const { aborted, release } = abortOf(signal);
  try {
    return new Uint8Array(await Promise.race([response.arrayBuffer(), aborted]));
  } finally {
    release();
  }
}

/**
 * The chunks of `response`'s body. An abort of `signal` ends the reading at once with the
 * signal's reason and cancels the body.
 */
export async function* bodyChunks(response, signal) {
  if (!response.body) {
    yield await wholeBody(response, signal);
    return;
  }
  signal?.throwIfAborted();
  const reader = response.body.getReader();
  const { aborted, release } = abortOf(signal);
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
    release();
    if (!finished) reader.cancel().catch(() => {});
  }
}
