//! The Query API over edge-layout datasets written to disk by `pocaduck-edge-core`'s writer:
//! every label's points, counts and blocks against what was written (de-duplicated and in
//! `np.unique(axis=0)` order), unknown labels, labels above 2^53, more than three dims, the
//! cache, bad locations, and the blocking API inside and outside a tokio runtime.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use pocaduck_edge_core::write::{BlockCount, DatasetWriter, FileSink, WriterOptions};
use pocaduck_edge_core::PointCloud;
use pocaduck_edge_query::{
    AsyncQuery, Error, Points, Query, ReadError, StorageConfig, StorageType,
};

struct DirSink(PathBuf);

impl FileSink for DirSink {
    fn create(&mut self, path: &str) -> std::io::Result<Box<dyn Write + Send>> {
        let path = self.0.join(path);
        std::fs::create_dir_all(path.parent().expect("files are inside the dataset"))?;
        Ok(Box::new(File::create(path)?))
    }
}

/// A deterministic pseudo-random cloud of `n` points in `[offset, offset + spread)`, with
/// duplicates when `n` is large against `spread³`.
fn cloud(seed: u64, dims: usize, n: usize, spread: i64, offset: i64) -> PointCloud {
    let mut state = seed.wrapping_mul(6364136223846793005) ^ 0x9e37_79b9_7f4a_7c15;
    let mut data = Vec::with_capacity(n * dims);
    for _ in 0..n * dims {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        data.push(((state >> 33) as i64).rem_euclid(spread) + offset);
    }
    PointCloud::new(dims, data).unwrap()
}

/// A written dataset and what each label must read back as.
struct Written {
    _dir: tempfile::TempDir,
    path: PathBuf,
    expected: BTreeMap<u64, (Points, Vec<String>)>,
}

/// Writes labels (ascending) with small row groups and files, so labels span several row
/// groups and the dataset several files.
fn write(dims: usize, labels: Vec<(u64, PointCloud, Vec<&str>)>) -> Written {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dataset");
    let names = (0..dims).map(|d| format!("d{d}")).collect();
    let options = WriterOptions {
        row_group_rows: 1000,
        file_rows: 4000,
        ..WriterOptions::default()
    };
    let mut writer = DatasetWriter::new(DirSink(path.clone()), names, options).unwrap();
    let mut expected = BTreeMap::new();
    for (label, points, blocks) in labels {
        let counts: Vec<BlockCount> = blocks
            .iter()
            .map(|b| BlockCount {
                block_id: (*b).to_owned(),
                point_count: points.len() as u64,
            })
            .collect();
        writer.push_label(label, points.clone(), &counts).unwrap();
        let mut unique = points;
        unique.sort_unique();
        let blocks = blocks.iter().map(|b| (*b).to_owned()).collect();
        expected.insert(label, (Points::from(unique), blocks));
    }
    writer.finish().unwrap();
    Written {
        _dir: dir,
        path,
        expected,
    }
}

fn xyz_dataset() -> Written {
    write(
        3,
        vec![
            (0, cloud(1, 3, 10, 4, 0), vec!["b0"]),
            (7, cloud(2, 3, 2500, 12, -6), vec!["b1", "b2"]),
            (12345, cloud(3, 3, 3500, 1000, 1_000_000), vec![]),
            ((1 << 53) + 1, cloud(4, 3, 1, 10, 0), vec!["big"]),
            (u64::MAX - 1, cloud(5, 3, 4000, 30, -(1 << 40)), vec![]),
            (
                u64::MAX,
                PointCloud::new(3, vec![i64::MAX, i64::MIN, 0, 1, 2, 3, 1, 2, 3]).unwrap(),
                vec!["x", "y"],
            ),
        ],
    )
}

fn local(path: &Path) -> StorageConfig {
    StorageConfig::new(path.to_str().unwrap())
}

#[test]
fn every_label_reads_back_distinct_and_in_numpy_unique_order() {
    let w = xyz_dataset();
    let query = Query::new(local(&w.path)).unwrap();
    assert_eq!(query.storage_type(), StorageType::Local);
    assert_eq!(query.dims(), 3);
    let labels = query.get_labels().unwrap();
    assert_eq!(labels, w.expected.keys().copied().collect::<Vec<_>>());
    for (label, (points, blocks)) in &w.expected {
        let got = query.get_points(*label).unwrap();
        assert_eq!(&got, points, "label {label}");
        assert!(
            got.rows().zip(got.rows().skip(1)).all(|(a, b)| a < b),
            "label {label} is sorted and distinct"
        );
        assert_eq!(
            query.get_point_count(*label).unwrap(),
            points.len() as u64,
            "label {label}"
        );
        assert_eq!(
            &query.get_blocks_for_label(*label).unwrap(),
            blocks,
            "label {label}"
        );
    }
    // The written duplicates are gone.
    assert_eq!(query.get_points(u64::MAX).unwrap().len(), 2);
    assert!(w.expected[&7].0.len() < 2500, "label 7 had duplicates");
    query.close();
}

#[test]
fn labels_above_2_pow_53_are_exact() {
    let w = xyz_dataset();
    let query = Query::new(local(&w.path)).unwrap();
    let labels = query.get_labels().unwrap();
    assert!(labels.contains(&((1 << 53) + 1)));
    assert!(!labels.contains(&(1 << 53)), "no rounding to a float");
    assert!(labels.contains(&(u64::MAX - 1)));
    assert_eq!(
        query.get_points((1 << 53) + 1).unwrap(),
        w.expected[&((1 << 53) + 1)].0
    );
    assert!(query.get_points(1 << 53).unwrap().is_empty());
}

#[test]
fn unknown_labels_are_empty_not_errors() {
    let w = xyz_dataset();
    let query = Query::new(local(&w.path)).unwrap();
    for label in [1, 8, 12344, 1 << 53, u64::MAX - 2] {
        let points = query.get_points(label).unwrap();
        assert_eq!(points.shape(), (0, 3), "label {label}");
        assert_eq!(query.get_point_count(label).unwrap(), 0);
        assert!(query.get_blocks_for_label(label).unwrap().is_empty());
        let (points, timing) = query.get_points_timed(label).unwrap();
        assert_eq!(points.shape(), (0, 3));
        assert_eq!(timing.points_returned, 0);
        assert_eq!(timing.files_accessed, 0);
    }
}

#[test]
fn the_second_read_of_a_label_is_a_cache_hit() {
    let w = xyz_dataset();
    let query = Query::new(local(&w.path)).unwrap();
    let (first, t1) = query.get_points_timed(7).unwrap();
    assert!(!t1.cache_hit);
    assert_eq!(t1.backend, "edge");
    assert!(t1.requests >= 1 && t1.bytes_fetched > 0, "{t1:?}");
    assert_eq!(t1.files_accessed, 1);
    assert_eq!(t1.points_returned, first.len() as u64);
    assert!(
        t1.total_time >= t1.query_time && t1.total_time > 0.0,
        "{t1:?}"
    );
    let (second, t2) = query.get_points_timed(7).unwrap();
    assert!(t2.cache_hit);
    assert_eq!((t2.requests, t2.bytes_fetched), (0, 0));
    assert_eq!(second, first);
    // use_cache = false reads again.
    let (third, t3) = query.get_points_with(7, false).unwrap();
    assert!(!t3.cache_hit && t3.requests >= 1);
    assert_eq!(third, first);
    // The count of a cached label needs no request.
    let (count, tc) = query.get_point_count_timed(7).unwrap();
    assert_eq!((count, tc.cache_hit), (first.len() as u64, true));
}

#[test]
fn the_cache_keeps_only_cache_size_labels() {
    let w = xyz_dataset();
    let query = Query::with_cache_size(local(&w.path), 2).unwrap();
    for label in [0, 7, 12345] {
        query.get_points(label).unwrap();
    }
    assert!(
        !query.get_points_timed(0).unwrap().1.cache_hit,
        "0 was evicted"
    );
    assert!(query.get_points_timed(12345).unwrap().1.cache_hit);
    let none = Query::with_cache_size(local(&w.path), 0).unwrap();
    none.get_points(7).unwrap();
    assert!(!none.get_points_timed(7).unwrap().1.cache_hit);
}

#[test]
fn more_than_three_dims() {
    let w = write(
        4,
        vec![
            (3, cloud(7, 4, 3000, 5, 0), vec![]),
            (9, cloud(8, 4, 20, 100, -50), vec![]),
        ],
    );
    // The manifest's dims win over the config's (which are for VastDB tables).
    let query = Query::new(local(&w.path)).unwrap();
    assert_eq!(query.dims(), 4);
    for (label, (points, _)) in &w.expected {
        let got = query.get_points(*label).unwrap();
        assert_eq!(got.dims, 4);
        assert_eq!(&got, points);
    }
    assert_eq!(query.get_points(4).unwrap().shape(), (0, 4));
}

#[test]
fn file_urls_are_local_too() {
    let w = xyz_dataset();
    let query = Query::new(StorageConfig::new(format!("file://{}", w.path.display()))).unwrap();
    assert_eq!(query.storage_type(), StorageType::Local);
    assert_eq!(query.get_points(7).unwrap(), w.expected[&7].0);
}

#[test]
fn bad_locations_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing");
    match Query::new(local(&missing)).unwrap_err() {
        Error::Open { location, message } => {
            assert!(location.ends_with("missing"), "{location}");
            assert!(message.contains("dataset directory"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    // A directory without a manifest: the dataset is unavailable, the details kept whole.
    match Query::new(local(dir.path())).unwrap_err() {
        Error::Read(ReadError::Unavailable { detail, .. }) => {
            assert!(detail.contains("manifest.json"), "{detail}");
        }
        other => panic!("{other:?}"),
    }
}

#[tokio::test(flavor = "current_thread")]
async fn the_async_api_answers_the_same() {
    let w = xyz_dataset();
    let query = AsyncQuery::new(local(&w.path)).await.unwrap();
    assert_eq!(
        query.get_labels().await.unwrap(),
        w.expected.keys().copied().collect::<Vec<_>>()
    );
    for (label, (points, blocks)) in &w.expected {
        assert_eq!(&query.get_points(*label).await.unwrap(), points);
        assert_eq!(&query.get_blocks_for_label(*label).await.unwrap(), blocks);
    }
    // The blocking API works from inside a runtime too (it blocks this thread meanwhile),
    // and dropping it there is allowed.
    let blocking = Query::new(local(&w.path)).unwrap();
    assert_eq!(blocking.get_points(7).unwrap(), w.expected[&7].0);
    drop(blocking);
    query.close();
}

#[test]
fn a_query_is_shared_between_threads() {
    let w = xyz_dataset();
    let query = Query::new(local(&w.path)).unwrap();
    std::thread::scope(|s| {
        for label in w.expected.keys() {
            let (query, expected) = (&query, &w.expected[label].0);
            s.spawn(move || assert_eq!(&query.get_points(*label).unwrap(), expected));
        }
    });
}
