//! `vastdb-emulator`: a loopback VastDB stand-in for tests and the local demo. It speaks the
//! subset of the tabular protocol the official Python SDK 2.x uses (transactions, schemas,
//! tables, columns, statistics, inserts, updates and deletes by row id, and queries with
//! splits, sub-splits and paging), checks every SigV4 signature, keeps its tables in a
//! directory, and injects faults on request (`POST /_emulator/fault?kind=…`).

/// mimalloc keeps freed memory for reuse: replies of tens of megabytes would otherwise pay
/// for fresh pages (page faults) on every query.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod auth;
mod edit;
mod scan;
mod service;
mod store;
mod table;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{bail, Context};
use clap::Parser;
use pocaduck_edge_vastdb::Credentials;

/// A loopback VastDB emulator.
#[derive(Parser)]
#[command(version, about)]
struct Args {
    /// Address to listen on; loopback only (port 0 picks a free port).
    #[arg(long, default_value = "127.0.0.1:0")]
    listen: SocketAddr,
    /// Directory holding the tables (created if missing; kept across restarts).
    #[arg(long)]
    data: PathBuf,
    /// The access key requests must be signed with.
    #[arg(long, env = "VASTDB_EMULATOR_ACCESS_KEY")]
    access_key: String,
    /// The secret key requests must be signed with.
    #[arg(long, env = "VASTDB_EMULATOR_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// A bucket to serve (repeatable; clients cannot create buckets).
    #[arg(long = "bucket", default_value = "pocaduck")]
    buckets: Vec<String>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let args = Args::parse();
    if !args.listen.ip().is_loopback() {
        bail!(
            "the emulator listens on loopback addresses only, not {}",
            args.listen
        );
    }
    let store = store::Store::open(&args.data, args.buckets)?;
    let emulator = Arc::new(service::Emulator::new(
        store,
        Credentials::new(args.access_key, args.secret_key),
    ));
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    // Tests read this line to learn the port.
    println!("listening on http://{}", listener.local_addr()?);
    // Replies go out in several writes (headers, then the streamed body): without
    // TCP_NODELAY each small one waits for the client's delayed ACK (up to 40 ms).
    let listener = axum::serve::ListenerExt::tap_io(listener, |stream| {
        let _ = stream.set_nodelay(true);
    });
    axum::serve(listener, service::router(emulator))
        .with_graceful_shutdown(async {
            let _ = tokio::signal::ctrl_c().await;
        })
        .await?;
    Ok(())
}
