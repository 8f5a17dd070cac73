// Credentials for the access tests, made with node:crypto alone (not the code under test):
// a bearer token's hash, and URLs signed as docs/security.md specifies.

import { createHash, createHmac } from "node:crypto";

/** A signing key's secret for tests: bytes 0, 1, …, 31 in hex. */
export const SECRET_HEX = Buffer.from(Array.from({ length: 32 }, (_, i) => i)).toString("hex");

/** `sha256:<hex>` of `token`, as the access configuration lists it. */
export function hashToken(token) {
  return `sha256:${createHash("sha256").update(token, "utf8").digest("hex")}`;
}

/** RFC 3986 percent-encoding: all but A–Z a–z 0–9 - . _ ~. */
function encode(s) {
  return encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * The query of a URL signed with `secretHex` as key `kid` until `expires` (Unix seconds):
 * for `path` and `params` alone, or with `prefix` for every path under it.
 */
export function signedQuery(secretHex, kid, { path, prefix, params = [], expires }) {
  const auth = [["expires", String(expires)], ["kid", kid]];
  if (prefix !== undefined) auth.push(["prefix", prefix]);
  const signed = prefix !== undefined ? auth : [...params, ...auth];
  const canonical = signed
    .map(([k, v]) => `${encode(k)}=${encode(v)}`)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .join("&");
  const scope = prefix ?? path;
  const sig = createHmac("sha256", Buffer.from(secretHex, "hex")).update(`${scope}\n${canonical}`).digest("base64url");
  return [...params, ...auth, ["sig", sig]].map(([k, v]) => `${encode(k)}=${encode(v)}`).join("&");
}
