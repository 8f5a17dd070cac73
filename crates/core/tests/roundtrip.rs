//! Writes datasets into memory and reads every label back through the planner and decoder,
//! fetching only the planned byte ranges.

use bytes::Bytes;
use pocaduck_edge_core::cloud::PackedRows;
use pocaduck_edge_core::index::{IndexEntry, IndexPage};
use pocaduck_edge_core::manifest::ByteRange;
use pocaduck_edge_core::plan::plan_label;
use pocaduck_edge_core::read::{decode_points, parse_footer, SparseFile};
use pocaduck_edge_core::write::{
    coarse_stride, BlockCount, DatasetWriter, MemorySink, WriterOptions,
};
use pocaduck_edge_core::{Manifest, PointCloud};

/// File `path` of `sink`, which must have been written.
fn written(sink: &MemorySink, path: &str) -> Bytes {
    sink.file(path).expect("written")
}

/// A writer of `x, y, z` points into `sink`.
fn xyz_writer(sink: MemorySink, options: WriterOptions) -> DatasetWriter<MemorySink> {
    DatasetWriter::new(sink, vec!["x".into(), "y".into(), "z".into()], options).unwrap()
}

/// A deterministic pseudo-random cloud with duplicates.
fn cloud(seed: u64, n: usize, spread: i64, offset: i64) -> PointCloud {
    let mut state = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    let mut next = || {
        state = state
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        ((state >> 33) as i64).rem_euclid(spread) + offset
    };
    let mut data = Vec::with_capacity(n * 3);
    for _ in 0..n {
        data.extend_from_slice(&[next(), next(), next()]);
    }
    PointCloud::new(3, data).unwrap()
}

/// A label's index entry, found as a host finds it: through the manifest's page refs.
fn find_entry(sink: &MemorySink, manifest: &Manifest, label: u64) -> Option<IndexEntry> {
    let (_, page) = manifest.page_for(label)?;
    let index = written(sink, &manifest.label_index.file.path);
    let r = page.range;
    let page = IndexPage::decode(&index[r.offset as usize..r.end() as usize]).unwrap();
    page.find(label).cloned()
}

/// Reads a label back as a host would: index page, footer, planned ranges.
fn read_label(sink: &MemorySink, manifest: &Manifest, label: u64) -> Option<PointCloud> {
    let entry = find_entry(sink, manifest, label)?;
    Some(read_entry(sink, manifest, &entry))
}

/// Reads the points an entry (a label's or its coarse level's) locates.
fn read_entry(sink: &MemorySink, manifest: &Manifest, entry: &IndexEntry) -> PointCloud {
    let file = manifest.file(entry.file).unwrap();
    let bytes = written(sink, &file.path);
    let f = file.footer.unwrap();
    let meta = parse_footer(&file.path, &bytes[f.offset as usize..f.end() as usize]).unwrap();
    let dims = manifest.dims.len();
    let mut out = PointCloud::empty(dims);
    for chunk in plan_label(entry, &meta, 1 << 20).unwrap() {
        let b = chunk.bytes;
        assert!(b.offset >= entry.bytes.offset && b.end() <= entry.bytes.end());
        let mut sparse = SparseFile::new(file.size);
        sparse.insert(b.offset, bytes.slice(b.offset as usize..b.end() as usize));
        out.extend(&decode_points(&file.path, &meta, sparse, &chunk.rows, dims).unwrap())
            .unwrap();
    }
    out
}

#[test]
fn every_label_reads_back_exactly_from_planned_ranges() {
    let sink = MemorySink::default();
    let options = WriterOptions {
        row_group_rows: 1000,
        file_rows: 5000,
        ..Default::default()
    };
    let mut writer = xyz_writer(sink.clone(), options);
    let big = (1u64 << 53) + 1;
    let labels: Vec<(u64, PointCloud)> = vec![
        (1, cloud(1, 10, 5, 0)),
        (2, cloud(2, 900, 40, -20)),
        (3, cloud(3, 2500, 100, 1000)),
        (7, cloud(4, 1, 1, 0)),
        (big, cloud(5, 3000, 60, -(1 << 20))),
        (
            u64::MAX,
            PointCloud::new(3, vec![i64::MAX, i64::MIN, 0, 1, 2, 3]).unwrap(),
        ),
    ];
    for (label, points) in &labels {
        let blocks = [BlockCount {
            block_id: format!("{label}-a"),
            point_count: points.len() as u64,
        }];
        writer.push_label(*label, points.clone(), &blocks).unwrap();
    }
    let manifest = writer.finish().unwrap();
    let reparsed = Manifest::from_json(&written(&sink, "manifest.json")).unwrap();
    assert_eq!(reparsed, manifest);
    assert!(manifest.files.len() >= 2, "small file_rows splits files");
    assert_eq!(manifest.label_count, labels.len() as u64);

    let mut total = 0;
    for (label, points) in &labels {
        let mut expected = points.clone();
        expected.sort_unique();
        let mut got = read_label(&sink, &manifest, *label).unwrap();
        assert_eq!(got.len(), expected.len(), "label {label}");
        got.sort_xyz();
        assert_eq!(got, expected, "label {label}");
        total += expected.len() as u64;
    }
    assert_eq!(manifest.point_count, total);
    assert!(read_label(&sink, &manifest, 4).is_none());
}

#[test]
fn an_index_entry_whose_bytes_miss_its_row_groups_is_refused() {
    let sink = MemorySink::default();
    let options = WriterOptions {
        row_group_rows: 100,
        ..Default::default()
    };
    let mut writer = xyz_writer(sink.clone(), options);
    writer.push_label(3, cloud(3, 500, 1000, 0), &[]).unwrap();
    let manifest = writer.finish().unwrap();
    let entry = find_entry(&sink, &manifest, 3).unwrap();
    let file = manifest.file(entry.file).unwrap();
    let f = file.footer.unwrap();
    let meta = parse_footer(&file.path, &written(&sink, &file.path)[f.offset as usize..]).unwrap();
    assert!(plan_label(&entry, &meta, u64::MAX).is_ok());
    for (offset, length) in [
        (entry.bytes.offset + 1, entry.bytes.length - 1),
        (entry.bytes.offset, entry.bytes.length - 1),
    ] {
        let mut wrong = entry.clone();
        wrong.bytes = ByteRange { offset, length };
        let e = plan_label(&wrong, &meta, u64::MAX).unwrap_err().to_string();
        assert!(
            e.contains("lies outside the bytes its index entry names"),
            "{e}"
        );
    }
}

#[test]
fn labels_are_stored_in_xyz_order_across_row_groups() {
    let sink = MemorySink::default();
    let options = WriterOptions {
        row_group_rows: 256,
        ..Default::default()
    };
    let mut writer = xyz_writer(sink.clone(), options);
    writer.push_label(5, cloud(9, 20_000, 64, 0), &[]).unwrap();
    let manifest = writer.finish().unwrap();
    assert!(manifest.blocks.is_none());
    let points = read_label(&sink, &manifest, 5).unwrap();
    let rows: Vec<&[i64]> = points.rows().collect();
    assert!(rows.len() > 256 * 4, "spans many row groups");
    assert!(
        rows.windows(2).all(|w| w[0] < w[1]),
        "strictly ascending rows"
    );
}

#[test]
fn points_of_other_dims_read_back_exactly_across_row_groups() {
    for dims in [1usize, 2, 4] {
        let sink = MemorySink::default();
        let options = WriterOptions {
            row_group_rows: 100,
            ..Default::default()
        };
        let names = (0..dims).map(|d| format!("d{d}")).collect();
        let mut writer = DatasetWriter::new(sink.clone(), names, options).unwrap();
        let clouds: Vec<PointCloud> = (0..3u64)
            .map(|seed| {
                let values = cloud(seed, 250, 1000, -500).into_values();
                PointCloud::new(dims, values[..values.len() / dims * dims].to_vec()).unwrap()
            })
            .collect();
        for (label, points) in clouds.iter().enumerate() {
            writer
                .push_label(label as u64, points.clone(), &[])
                .unwrap();
        }
        let manifest = writer.finish().unwrap();
        for (label, points) in clouds.iter().enumerate() {
            let mut expected = points.clone();
            expected.sort_unique();
            let got = read_label(&sink, &manifest, label as u64).unwrap();
            assert_eq!(got, expected, "{dims} dims, label {label}");
        }
    }
}

#[test]
fn row_groups_of_no_rows_are_refused() {
    let options = WriterOptions {
        row_group_rows: 0,
        ..Default::default()
    };
    let dims = ["x", "y", "z"].map(String::from).to_vec();
    assert!(DatasetWriter::new(MemorySink::default(), dims, options).is_err());
}

#[test]
fn labels_must_ascend_and_dims_match() {
    let mut writer = xyz_writer(MemorySink::default(), WriterOptions::default());
    writer.push_label(5, cloud(1, 3, 4, 0), &[]).unwrap();
    assert!(writer.push_label(5, cloud(1, 3, 4, 0), &[]).is_err());
    assert!(writer.push_label(4, cloud(1, 3, 4, 0), &[]).is_err());
    assert!(writer
        .push_label(6, PointCloud::new(2, vec![1, 2]).unwrap(), &[])
        .is_err());
}

#[test]
fn big_labels_get_a_coarse_level_of_every_stride_th_point() {
    let sink = MemorySink::default();
    let options = WriterOptions {
        row_group_rows: 64,
        file_rows: 1000,
        coarse_points: 100,
        ..Default::default()
    };
    let mut writer = xyz_writer(sink.clone(), options);
    let wide = cloud(6, 900, 1000, i64::from(i32::MAX) - 500);
    let labels: Vec<(u64, PointCloud)> = vec![
        (1, cloud(1, 300, 1000, 0)),
        (2, cloud(2, 450, 1000, -500)),
        (3, cloud(3, 2000, 1000, 0)),
        (u64::MAX - 1, wide),
        (u64::MAX, cloud(4, 1300, 1000, 7)),
    ];
    for (label, points) in &labels {
        writer.push_label(*label, points.clone(), &[]).unwrap();
    }
    let manifest = writer.finish().unwrap();
    assert_eq!(
        Manifest::from_json(&written(&sink, "manifest.json")).unwrap(),
        manifest
    );
    assert!(
        manifest.coarse.len() >= 2,
        "the wide label starts a coarse file"
    );
    assert!(manifest
        .coarse
        .iter()
        .all(|f| f.path.starts_with("coarse/")));
    assert_eq!(
        manifest.files.iter().map(|f| f.rows).sum::<u64>(),
        manifest.point_count,
        "coarse rows are not among the points files"
    );

    for (label, points) in &labels {
        let mut all = points.clone();
        all.sort_unique();
        let n = all.len() as u64;
        let entry = find_entry(&sink, &manifest, *label).unwrap();
        let Some(stride) = coarse_stride(n, 100) else {
            assert!(entry.coarse.is_none(), "label {label} of {n} points");
            assert_eq!(manifest.entry_for_limit(&entry, Some(1)), entry);
            continue;
        };
        let coarse = entry
            .coarse
            .clone()
            .expect("a big label has a coarse level");
        assert_eq!(coarse.stride, stride);
        assert!((101..=200).contains(&coarse.point_count), "{coarse:?}");
        let expected: Vec<i64> = all
            .values()
            .chunks(3)
            .step_by(stride as usize)
            .flatten()
            .copied()
            .collect();
        let level = manifest.entry_for_limit(&entry, Some(coarse.point_count));
        assert_eq!(level.point_count, coarse.point_count);
        assert_eq!(read_entry(&sink, &manifest, &level).values(), &expected[..]);
        assert_eq!(
            manifest.entry_for_limit(&entry, Some(coarse.point_count + 1)),
            entry,
            "a limit above the level reads the label"
        );
        assert_eq!(manifest.entry_for_limit(&entry, None), entry);
        assert_eq!(read_entry(&sink, &manifest, &entry), all);
    }
}

#[test]
fn packed_labels_write_the_same_dataset_as_int64_ones() {
    let options = WriterOptions {
        row_group_rows: 64,
        file_rows: 1000,
        coarse_points: 100,
        ..Default::default()
    };
    let labels: Vec<(u64, PointCloud)> = vec![
        (1, cloud(1, 50, 10, 0)),
        (2, cloud(2, 3000, 40, -20)),
        (5, cloud(3, 1500, 1000, 1 << 40)),
    ];
    let (by_rows, by_keys) = (MemorySink::default(), MemorySink::default());
    let mut rows_writer = xyz_writer(by_rows.clone(), options.clone());
    let mut keys_writer = xyz_writer(by_keys.clone(), options);
    for (label, points) in &labels {
        let blocks = [BlockCount {
            block_id: format!("{label}"),
            point_count: points.len() as u64,
        }];
        rows_writer
            .push_label(*label, points.clone(), &blocks)
            .unwrap();
        let mut packed = PackedRows::new(points.row(0), points.len()).unwrap();
        assert!(packed.extend(points.values()));
        keys_writer.push_packed(*label, packed, &blocks).unwrap();
    }
    let (a, b) = (rows_writer.finish().unwrap(), keys_writer.finish().unwrap());
    assert!(!a.coarse.is_empty());
    // The same files, byte for byte (their ETags are content hashes).
    assert_eq!(a, b);
    assert_eq!(
        keys_writer_refuses_other_dims(),
        "points: label 1 has 3 dims, the dataset 2"
    );
}

fn keys_writer_refuses_other_dims() -> String {
    let mut writer = DatasetWriter::new(
        MemorySink::default(),
        vec!["x".into(), "y".into()],
        WriterOptions::default(),
    )
    .unwrap();
    let packed = PackedRows::new(&[0, 0, 0], 0).unwrap();
    writer.push_packed(1, packed, &[]).unwrap_err().to_string()
}

#[test]
fn manifests_of_formats_1_and_2_are_read_and_others_refused() {
    let sink = MemorySink::default();
    let mut writer = xyz_writer(sink.clone(), WriterOptions::default());
    writer.push_label(1, cloud(1, 10, 5, 0), &[]).unwrap();
    let manifest = writer.finish().unwrap();
    assert_eq!(manifest.version, 2);
    let json: serde_json::Value = serde_json::from_slice(&written(&sink, "manifest.json")).unwrap();
    for version in [0, 1, 2, 3] {
        let mut j = json.clone();
        j["version"] = version.into();
        let parsed = Manifest::from_json(&serde_json::to_vec(&j).unwrap());
        if (1..=2).contains(&version) {
            assert_eq!(parsed.unwrap().version, version);
        } else {
            let err = parsed.unwrap_err().to_string();
            assert!(
                err.contains(&format!("version {version} is not supported")),
                "{err}"
            );
        }
    }
}
