//! The pocaduck-edge read API as a Cloudflare Worker: the proxy's [`Service`] over the
//! Workers runtime's IO, with no routing, formats or limits of its own (docs/worker.md).
//!
//! * [`config`]: `wrangler.toml`'s `[vars]` and the secrets, as the native server's flags;
//! * `stores`: the datasets' files in an R2 bucket binding or under a base URL, and `cache`:
//!   the Cache API in front of them;
//! * `upstream`: VastDB over the runtime's TCP sockets, `socket` their IO, `pass_on` the
//!   replies whose bodies the Worker sends on without reading them;
//! * `background`: work that runs past a request's answer (`waitUntil`);
//! * `clock`, `console`: `Date.now()` and the log.
//!
//! Only [`config`] builds natively (for its tests); the rest is the Worker, on wasm32.
//!
//! [`Service`]: pocaduck_edge_proxy::Service

pub mod config;

#[cfg(target_arch = "wasm32")]
mod background;
#[cfg(target_arch = "wasm32")]
mod cache;
#[cfg(target_arch = "wasm32")]
mod clock;
#[cfg(target_arch = "wasm32")]
mod console;
#[cfg(target_arch = "wasm32")]
mod host;
#[cfg(target_arch = "wasm32")]
mod pass_on;
#[cfg(target_arch = "wasm32")]
mod socket;
#[cfg(target_arch = "wasm32")]
mod stores;
#[cfg(target_arch = "wasm32")]
mod upstream;
