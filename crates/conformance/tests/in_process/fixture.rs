//! The in-process host: datasets written into memory with the core writer, served by the
//! proxy's `Service` beside broken copies, with the limits, CORS origin and log the host
//! checks take.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use pocaduck_edge_conformance::checks::host::BROKEN_DATASETS;
use pocaduck_edge_conformance::memory::{CapturedLog, MemoryStore, WallClock};
use pocaduck_edge_conformance::InProcess;
use pocaduck_edge_core::cloud::PointCloud;
use pocaduck_edge_core::write::{DatasetWriter, MemorySink, WriterOptions};
use pocaduck_edge_proxy::cors::CorsPolicy;
use pocaduck_edge_proxy::{Access, Limits, RangeStore, Service, ServiceConfig};

/// The checked dataset's name.
pub(crate) const DATASET: &str = "sample";

/// The origin the host allows.
pub(crate) const ORIGIN: &str = "https://viewer.example";

/// The host's limits: fewer labels than the dataset has, fewer points than its biggest label.
pub(crate) const LIMITS: Limits = Limits {
    max_labels: 5,
    max_points: 20_000,
    ..Limits::DEFAULT
};

/// `coarse_points` of the `coarse` dataset.
pub(crate) const COARSE_POINTS: u64 = 1000;

/// The labels and their point counts: ids above 2^53 and up to `u64::MAX`, one label over
/// [`LIMITS`]' points filling row groups of its own, three with a coarse level at
/// [`COARSE_POINTS`] and the others without.
const LABELS: [(u64, usize); 7] = [
    (3, 600),
    (17, 40),
    (1000, 3000),
    (123_456_789, 6000),
    ((1 << 53) + 1, 30_000),
    ((1 << 63) + 5, 4500),
    (u64::MAX, 200),
];

/// A dataset's files, by path.
pub(crate) type Files = HashMap<String, Bytes>;

/// `n` distinct pseudo-random points of label `seed` in a cube of side 2000 around the
/// origin (negative coordinates included).
fn cloud(seed: u64, n: usize) -> PointCloud {
    let mut state = seed ^ 0x9e37_79b9_7f4a_7c15;
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) % 2000) as i64 - 1000
    };
    let mut points = BTreeSet::new();
    // Bounded: 8e9 cells hold any n here many times over.
    for _ in 0..n * 4 {
        points.insert([next(), next(), next()]);
        if points.len() == n {
            break;
        }
    }
    assert_eq!(points.len(), n);
    PointCloud::new(3, points.into_iter().flatten().collect()).unwrap()
}

/// Writes [`LABELS`] with `coarse_points` (0: no coarse levels) into memory.
pub(crate) fn dataset(coarse_points: u64) -> Files {
    let sink = MemorySink::default();
    let options = WriterOptions {
        row_group_rows: 4096,
        coarse_points,
        ..WriterOptions::default()
    };
    let dims = ["x", "y", "z"].map(String::from).to_vec();
    let mut writer = DatasetWriter::new(sink.clone(), dims, options).unwrap();
    for (label, n) in LABELS {
        writer.push_label(label, cloud(label, n), &[]).unwrap();
    }
    writer.finish().unwrap();
    sink.files()
}

/// [`BROKEN_DATASETS`] made of `good`: its manifest cut short, its first points file gone,
/// that file cut to half.
fn broken(good: &Files) -> Vec<(String, Files)> {
    let points = "points/part-00000.parquet";
    BROKEN_DATASETS
        .iter()
        .map(|(name, _)| {
            let mut files = good.clone();
            match *name {
                "bad-manifest" => {
                    files.insert(
                        "manifest.json".into(),
                        Bytes::from_static(b"{\"format\": \"pocaduck-edge\", \"ver"),
                    );
                }
                "missing-parquet" => {
                    files
                        .remove(points)
                        .expect("the dataset has a first points file");
                }
                "truncated-parquet" => {
                    let file = files[points].clone();
                    files.insert(points.into(), file.slice(..file.len() / 2));
                }
                other => panic!("no recipe for broken dataset {other}"),
            }
            (name.to_string(), files)
        })
        .collect()
}

/// The host the suite runs against, built once.
pub(crate) struct Host {
    /// The service, as a target.
    pub target: InProcess,
    /// What the service logged.
    pub log: Arc<CapturedLog>,
}

/// [`DATASET`], `coarse` (the same labels with coarse levels) and the broken copies, served
/// with [`LIMITS`] and [`ORIGIN`].
pub(crate) fn host() -> &'static Host {
    static HOST: OnceLock<Host> = OnceLock::new();
    HOST.get_or_init(|| {
        let good = dataset(0);
        let mut datasets: Vec<(String, Arc<dyn RangeStore>)> = vec![
            (DATASET.into(), Arc::new(MemoryStore::new(good.clone()))),
            (
                "coarse".into(),
                Arc::new(MemoryStore::new(dataset(COARSE_POINTS))),
            ),
        ];
        for (name, files) in broken(&good) {
            datasets.push((name, Arc::new(MemoryStore::new(files))));
        }
        let log = Arc::new(CapturedLog::default());
        let service = Service::new(ServiceConfig {
            datasets,
            vast: Vec::new(),
            access: Access::open(CorsPolicy::new(vec![ORIGIN.into()])),
            limits: LIMITS,
            clock: Arc::new(WallClock::new()),
            log: log.clone(),
        });
        Host {
            target: InProcess::new(Arc::new(service)),
            log,
        }
    })
}
