//! `pocaduck-edge`: serve neuron point clouds over HTTP, import PoCADuck datasets into the
//! edge layout, and build the bundled hemibrain sample.

/// mimalloc keeps freed memory for reuse: answers and imports of tens of megabytes would
/// otherwise pay for fresh pages (page faults) on every request.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod access;
mod bench;
mod bench_decode;
mod bench_relay;
mod bench_vastdb;
mod emulated;
mod import;
mod output_dir;
mod row_groups;
mod sample;
mod sample_dataset;
mod vastdb_load;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::{Parser, Subcommand};
use pocaduck_edge::serve;
use pocaduck_edge_core::write::{WriterOptions, DEFAULT_COARSE_POINTS, DEFAULT_ZSTD_LEVEL};
use pocaduck_edge_proxy::Limits;

/// Neuron point clouds for browsers and programs.
#[derive(Parser)]
#[command(name = "pocaduck-edge", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve the read API over edge-layout datasets (the bundled sample when no --data).
    Serve {
        /// A dataset: a directory or an object-store URL (file://, s3://, gs://, az://, https://). Repeatable.
        #[arg(long = "data", value_name = "DIR|URL")]
        data: Vec<String>,
        /// Address to listen on (port 0 picks a free port).
        #[arg(long, default_value = "127.0.0.1:8080")]
        addr: SocketAddr,
        /// Origin allowed to read responses from a browser (`*` for any). Repeatable. With
        /// --access, each dataset's origins are in that file instead.
        #[arg(long = "cors-origin", default_value = "*")]
        cors_origins: Vec<String>,
        /// The access configuration (JSON, docs/security.md): who may read each dataset,
        /// and from which origins. Without it every dataset is public.
        #[arg(long, value_name = "FILE", conflicts_with = "cors_origins")]
        access: Option<PathBuf>,
        /// Most labels in one POST.
        #[arg(long, default_value_t = Limits::default().max_labels)]
        max_labels: usize,
        /// Most points in one answer that is held whole (npy and JSON with a bbox; npy, JSON and Parquet from a VastDB table).
        #[arg(long, default_value_t = Limits::default().max_points)]
        max_points: u64,
        /// Bytes the points answers in flight may hold in memory together; an answer waits
        /// for its share, first come first served (docs/security.md).
        #[arg(long, value_name = "BYTES", default_value_t = Limits::default().max_answer_bytes)]
        max_answer_bytes: u64,
        /// Points answers that may wait for --max-answer-bytes at once; one more is
        /// answered 503 with Retry-After.
        #[arg(long, value_name = "N", default_value_t = Limits::default().max_waiting_answers)]
        max_waiting_answers: usize,
        /// A VastDB table to serve as a dataset.
        #[command(flatten)]
        vastdb: Box<serve::VastOptions>,
        /// The demo's VastDB side: start a local vastdb-emulator, load the first dataset
        /// into it and serve that table too, as `<name>-vastdb`.
        #[arg(long, conflicts_with = "endpoint")]
        vastdb_emulator: bool,
        /// A static site (the viewer) to serve at `/`; `/v1/...` stays the read API.
        #[arg(long, value_name = "DIR")]
        www: Option<PathBuf>,
        /// Threads serving connections, each running its connections whole (one per core
        /// by default).
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..))]
        threads: Option<u16>,
        /// Serve `GET /metrics` on this address alone (e.g. 127.0.0.1:9090), not beside
        /// the API.
        #[arg(long, value_name = "ADDR")]
        metrics_addr: Option<std::net::SocketAddr>,
        /// Bounds on connections, requests and the shutdown.
        #[command(flatten)]
        connections: Box<pocaduck_edge::ConnectionFlags>,
    },
    /// Import a PoCADuck dataset (raw `worker_*` or `optimized/` layout) into the edge layout.
    Import {
        /// The PoCADuck dataset directory (its base_path).
        source: PathBuf,
        /// The new edge-layout dataset directory (must not exist or be empty).
        out: PathBuf,
        /// Memory for grouping points by label; larger inputs take several passes.
        #[arg(long, default_value_t = 512)]
        memory_mb: u64,
        #[command(flatten)]
        layout: LayoutArgs,
    },
    /// Build the sample dataset from the bundled hemibrain neurons.
    Sample {
        /// The new dataset directory.
        out: PathBuf,
        /// Voxel size in nm (8 is the hemibrain's full resolution: ~70M points per neuron).
        #[arg(long, default_value_t = sample::DEFAULT_VOXEL_NM)]
        voxel_nm: f64,
        #[command(flatten)]
        layout: LayoutArgs,
    },
    /// Access control: hash a bearer token for the access configuration, or sign a URL.
    Access {
        #[command(subcommand)]
        command: access::AccessCommand,
    },
    /// VastDB: load datasets into tables.
    Vastdb {
        #[command(subcommand)]
        command: VastdbCommand,
    },
    /// Time reading labels from a VastDB table: the raw reply bytes of one query, and
    /// `Query::get_points`; print JSON lines (the benchmark runs it).
    #[command(hide = true)]
    BenchVastdb {
        #[command(flatten)]
        table: VastTableArgs,
        /// The table layout.
        #[arg(long, default_value_t = pocaduck_edge_read::vast::DEFAULT_LAYOUT)]
        layout: pocaduck_edge_read::Layout,
        /// Values per point.
        #[arg(long, default_value_t = pocaduck_edge_read::vast::DEFAULT_DIMS)]
        dims: usize,
        /// Timed runs per label (after one warm-up).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Labels to read.
        labels: Vec<u64>,
    },
    /// Time the npm client's Parquet decode built natively on an answer saved to a file;
    /// print JSON (the decode benchmark runs it).
    #[command(hide = true)]
    BenchDecode {
        /// Timed decodes (after one warm-up).
        #[arg(long, default_value_t = 20)]
        repeat: usize,
        /// A Parquet answer of the read API (`format=parquet`).
        file: PathBuf,
    },
    /// Relay TCP connections to another address, copying bytes both ways and nothing else
    /// (the VastDB benchmark's floor for any proxy).
    #[command(hide = true)]
    BenchRelay {
        /// The address to listen on.
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
        /// The address to relay to, e.g. 127.0.0.1:9090.
        #[arg(long)]
        upstream: SocketAddr,
    },
    /// Fetch labels from a running server as Arrow, decode them to int64, print JSON timings.
    #[command(hide = true)]
    BenchClient {
        /// The server, e.g. http://127.0.0.1:8080.
        #[arg(long)]
        url: String,
        /// The dataset.
        #[arg(long)]
        dataset: String,
        /// Extra query options, e.g. `limit=1000000`.
        #[arg(long, default_value = "")]
        query: String,
        /// Timed fetches per label (after one warm-up).
        #[arg(long, default_value_t = 5)]
        repeat: usize,
        /// Read each answer to its end without decoding it (times the server and the
        /// socket alone).
        #[arg(long)]
        drain: bool,
        /// Labels to fetch.
        labels: Vec<String>,
    },
}

#[derive(Subcommand)]
enum VastdbCommand {
    /// Copy an edge-layout dataset or a PoCADuck directory into a VastDB table (created when
    /// missing); a rerun completes an interrupted load without duplicates.
    Load {
        /// An edge-layout dataset directory, or a PoCADuck one (imported first into a
        /// temporary edge-layout dataset).
        source: PathBuf,
        #[command(flatten)]
        table: VastTableArgs,
        /// The table layout to write.
        #[arg(long, default_value = "columnar")]
        layout: pocaduck_edge_read::Layout,
        /// Megabytes inserted in one transaction before it is committed at a label boundary
        /// (0: after every label).
        #[arg(long, default_value_t = 64)]
        commit_mb: usize,
        /// Memory for grouping points by label when importing a PoCADuck directory.
        #[arg(long, default_value_t = 512)]
        memory_mb: u64,
    },
}

/// How the edge layout is written.
#[derive(clap::Args)]
struct LayoutArgs {
    /// zstd level of the points files (default: 3 for import, fast to write; 14 for the
    /// sample, built once and served often): higher is smaller at rest and slower to write
    /// (14: a quarter fewer bytes than 3, 4× slower); reading is as fast.
    #[arg(long, value_parser = clap::value_parser!(i32).range(1..=22))]
    zstd_level: Option<i32>,
    /// Labels of more than 4 × this many points get a coarse level of more than this many
    /// (every 2^k-th point), which levels of detail of up to this many points read instead
    /// of the whole label; 0 writes none.
    #[arg(long, default_value_t = DEFAULT_COARSE_POINTS)]
    coarse_points: u64,
}

impl LayoutArgs {
    /// The writer's options, at `zstd_level` unless told another.
    fn writer_options(&self, zstd_level: i32) -> WriterOptions {
        WriterOptions {
            zstd_level: self.zstd_level.unwrap_or(zstd_level),
            coarse_points: self.coarse_points,
            ..WriterOptions::default()
        }
    }
}

/// A VastDB table and the keys to reach it.
#[derive(clap::Args)]
struct VastTableArgs {
    /// VastDB endpoint, e.g. http://vast.example:80.
    #[arg(long)]
    endpoint: String,
    /// Access key (or the environment variable, to keep it out of shell history).
    #[arg(long, env = "VASTDB_ACCESS_KEY", hide_env_values = true)]
    access_key: String,
    /// Secret key (or the environment variable, to keep it out of shell history).
    #[arg(long, env = "VASTDB_SECRET_KEY", hide_env_values = true)]
    secret_key: String,
    /// The bucket (it must exist).
    #[arg(long)]
    bucket: String,
    /// The schema (`parent/child` for a nested one; `vastdb load` creates it when missing).
    #[arg(long)]
    schema: String,
    /// The table (`vastdb load` creates it when missing).
    #[arg(long, default_value = pocaduck_edge_read::vast::DEFAULT_TABLE)]
    table: String,
}

impl VastTableArgs {
    fn path(&self) -> anyhow::Result<pocaduck_edge_vastdb::TablePath> {
        Ok(pocaduck_edge_vastdb::TablePath::new(
            &self.bucket,
            &self.schema,
            &self.table,
        )?)
    }
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        // Colours only for a terminal: a log file gets plain `key=value` lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match Cli::parse().command {
        Command::Serve {
            mut data,
            addr,
            cors_origins,
            access,
            max_labels,
            max_points,
            max_answer_bytes,
            max_waiting_answers,
            mut vastdb,
            vastdb_emulator,
            www,
            threads,
            metrics_addr,
            connections,
        } => {
            if let Some(dir) = &www {
                anyhow::ensure!(
                    dir.join("index.html").is_file(),
                    "--www {}: no index.html there (build the site with scripts/build-www.sh)",
                    dir.display()
                );
            }
            if data.is_empty() && vastdb.endpoint.is_none() {
                data.push(
                    sample_dataset::bundled_sample()?
                        .to_string_lossy()
                        .into_owned(),
                );
            }
            // Lives as long as the server.
            let _emulator = if vastdb_emulator {
                let first = Path::new(&data[0]);
                anyhow::ensure!(
                    first.join("manifest.json").is_file(),
                    "--vastdb-emulator loads the first --data, which must be a local edge-layout dataset"
                );
                Some(emulated::start(first, &mut vastdb)?)
            } else {
                None
            };
            let limits = Limits {
                max_labels,
                max_points,
                max_answer_bytes,
                max_waiting_answers,
                ..Limits::default()
            };
            serve::serve(serve::ServeOptions {
                data,
                addr,
                cors_origins,
                access,
                limits,
                vastdb: Some(*vastdb),
                www,
                threads: threads.map_or_else(
                    || std::thread::available_parallelism().map_or(1, usize::from),
                    usize::from,
                ),
                metrics_addr,
                connections: connections.limits(),
            })
        }
        Command::Access { command } => access::run(command),
        Command::Import {
            source,
            out,
            memory_mb,
            layout,
        } => {
            let options = import::ImportOptions {
                memory_budget_bytes: memory_mb << 20,
                progress: true,
                writer: layout.writer_options(DEFAULT_ZSTD_LEVEL),
            };
            let report = import::import(&source, &out, &options)?;
            eprintln!(
                "imported {} labels, {} distinct points ({} rows from {} files, {:?} layout, {} passes) in {:.2} s",
                report.labels, report.points, report.rows_read, report.files_read, report.layout, report.passes, report.seconds
            );
            Ok(())
        }
        Command::Vastdb {
            command:
                VastdbCommand::Load {
                    source,
                    table,
                    layout,
                    commit_mb,
                    memory_mb,
                },
        } => {
            let options = vastdb_load::LoadOptions {
                table: table.path()?,
                endpoint: table.endpoint,
                credentials: pocaduck_edge_vastdb::Credentials::new(
                    table.access_key,
                    table.secret_key,
                ),
                layout,
                transaction_bytes: commit_mb << 20,
                progress: true,
            };
            let report = if source.join("manifest.json").is_file() {
                vastdb_load::load(&source, &options)?
            } else {
                let scratch = tempfile::tempdir()?;
                let edge = scratch.path().join("dataset");
                let import = import::ImportOptions {
                    memory_budget_bytes: memory_mb << 20,
                    progress: true,
                    ..Default::default()
                };
                let imported = import::import(&source, &edge, &import)?;
                eprintln!(
                    "imported {} labels, {} distinct points from {}",
                    imported.labels,
                    imported.points,
                    source.display()
                );
                vastdb_load::load(&edge, &options)?
            };
            eprintln!(
                "loaded {} labels ({} points, {} rows); {} labels were already there",
                report.labels_loaded,
                report.points_loaded,
                report.rows_inserted,
                report.labels_skipped
            );
            Ok(())
        }
        Command::BenchVastdb {
            table,
            layout,
            dims,
            repeat,
            labels,
        } => {
            let target = bench_vastdb::Target {
                table: table.path()?,
                endpoint: table.endpoint,
                access_key: table.access_key,
                secret_key: table.secret_key,
                layout,
                dims,
            };
            for m in bench_vastdb::run(&target, &labels, repeat.max(1))? {
                println!("{}", serde_json::to_string(&m)?);
            }
            Ok(())
        }
        Command::BenchDecode { repeat, file } => {
            let m = bench_decode::run(&file, repeat.max(1))?;
            println!("{}", serde_json::to_string(&m)?);
            Ok(())
        }
        Command::BenchRelay { listen, upstream } => bench_relay::run(listen, upstream),
        Command::BenchClient {
            url,
            dataset,
            query,
            repeat,
            drain,
            labels,
        } => {
            for m in bench::run(&url, &dataset, &labels, &query, repeat.max(1), drain)? {
                println!("{}", serde_json::to_string(&m)?);
            }
            Ok(())
        }
        Command::Sample {
            out,
            voxel_nm,
            layout,
        } => {
            let manifest = sample_dataset::build(
                &out,
                voxel_nm,
                layout.writer_options(sample_dataset::ZSTD_LEVEL),
            )?;
            eprintln!(
                "sample: {} labels, {} points in {}",
                manifest.label_count,
                manifest.point_count,
                out.display()
            );
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::{CommandFactory, Parser};

    use super::{Cli, Command};

    /// The benchmark commands are left out of the help, and still run.
    #[test]
    fn bench_commands_are_hidden_but_callable() {
        let help = Cli::command().render_help().to_string();
        assert!(help.contains("serve"), "{help}");
        assert!(!help.contains("bench"), "{help}");
        let cli = Cli::try_parse_from([
            "pocaduck-edge",
            "bench-relay",
            "--upstream",
            "127.0.0.1:9090",
        ])
        .unwrap();
        assert!(matches!(cli.command, Command::BenchRelay { .. }));
        let help = Cli::try_parse_from(["pocaduck-edge", "bench-relay", "--help"])
            .err()
            .expect("--help ends parsing");
        assert_eq!(help.kind(), clap::error::ErrorKind::DisplayHelp);
        assert!(help.to_string().contains("--upstream"), "{help}");
    }
}
