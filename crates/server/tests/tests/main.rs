//! The `pocaduck-edge` command's tests, in one test binary: each module is a suite of its
//! own (`cargo test -p pocaduck-edge --test tests MODULE::` runs one).
//!
//! Modules share nothing but [`common`]: each starts its own processes (kept in a
//! `OnceLock` of its own where a suite shares one), so they run side by side.

mod access;
mod api;
mod app;
mod common;
mod connections;
mod hostile;
mod import;
mod integrity;
mod observe;
mod query;
mod serve;
mod vastdb;
mod www;
