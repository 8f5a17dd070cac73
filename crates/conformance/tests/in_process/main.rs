//! The conformance suite in-process: the proxy's `Service` over datasets written into
//! memory, handed requests directly (no socket, no process), and the server-side failures
//! only an in-process host can script: VastDB's faults through a scripted upstream, a store
//! that fails. Also the checks failing on a host that tampers with the API, and the HTTP
//! target against a loopback listener.

mod faults;
mod fixture;
mod http_target;
mod suite;
mod tampered;
