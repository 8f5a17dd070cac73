//! `pocaduck-edge import` on PoCADuck layouts written here with the parquet crate: results,
//! and every bad input (a clear error naming the file, a non-zero exit, nothing left behind).

use std::path::Path;
use std::process::{Command, Output};
use std::sync::Arc;

use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray};
use arrow_schema::{DataType, Field, Schema};
use parquet::arrow::ArrowWriter;
use pocaduck_edge_core::Manifest;

/// Rows of a raw PoCADuck file: (label, block, point).
type Rows<'a> = &'a [(i64, &'a str, Vec<i64>)];

fn write_raw(path: &Path, rows: Rows) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    let mut data = ListBuilder::new(Int64Builder::new());
    for (_, _, p) in rows {
        data.values().append_slice(p);
        data.append(true);
    }
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::Int64, true),
        Field::new("block_id", DataType::Utf8, true),
        Field::new(
            "data",
            DataType::List(Arc::new(Field::new("item", DataType::Int64, true))),
            true,
        ),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(Int64Array::from(
            rows.iter().map(|r| r.0).collect::<Vec<_>>(),
        )),
        Arc::new(StringArray::from(
            rows.iter().map(|r| r.1).collect::<Vec<_>>(),
        )),
        Arc::new(data.finish()),
    ];
    let mut w =
        ArrowWriter::try_new(std::fs::File::create(path).unwrap(), schema.clone(), None).unwrap();
    w.write(&RecordBatch::try_new(schema, columns).unwrap())
        .unwrap();
    w.close().unwrap();
}

fn import(source: &Path, out: &Path, extra: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pocaduck-edge"))
        .arg("import")
        .arg(source)
        .arg(out)
        .args(extra)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn leftovers(dir: &Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// A small valid raw dataset: a label across two workers and two blocks with a duplicate,
/// a label above 2^53, and one with the int64 sign bit set (a label ≥ 2^63).
fn valid_source(dir: &Path) {
    write_raw(
        &dir.join("worker_0/data/0-0.parquet"),
        &[
            (5, "a", vec![1, 2, 3]),
            (5, "a", vec![-1, 2, 3]),
            ((1 << 53) + 1, "b", vec![7, 7, 7]),
            (-2, "z", vec![0, 0, 1]),
        ],
    );
    write_raw(
        &dir.join("worker_1/data/1-0.parquet"),
        &[(5, "b", vec![1, 2, 3]), (5, "b", vec![4, 5, 6])],
    );
}

#[test]
fn imports_labels_blocks_and_big_ids() {
    let dir = tempfile::tempdir().unwrap();
    valid_source(&dir.path().join("src"));
    let out = dir.path().join("out");
    let o = import(&dir.path().join("src"), &out, &[]);
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest = Manifest::from_json(&std::fs::read(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest.label_count, 3);
    assert_eq!(
        manifest.point_count,
        3 + 1 + 1,
        "label 5 has 3 distinct points"
    );
    assert!(manifest.blocks.is_some());
    let pages: Vec<u64> = manifest
        .label_index
        .pages
        .iter()
        .flat_map(|p| [p.first_label, p.last_label])
        .collect();
    assert_eq!(pages.first(), Some(&5));
    assert_eq!(
        pages.last(),
        Some(&(u64::MAX - 1)),
        "int64 -2 is the u64 label 2^64 - 2"
    );
    assert_eq!(
        leftovers(dir.path()).len(),
        2,
        "no partial directory is left: {:?}",
        leftovers(dir.path())
    );
}

#[test]
fn a_truncated_file_is_named_and_nothing_is_left() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    valid_source(&src);
    let f = src.join("worker_1/data/1-0.parquet");
    let len = std::fs::metadata(&f).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&f)
        .unwrap()
        .set_len(len - 20)
        .unwrap();
    let out = dir.path().join("out");
    let o = import(&src, &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("1-0.parquet"), "{}", stderr(&o));
    assert!(!out.exists());
    assert_eq!(leftovers(dir.path()), vec!["src".to_string()]);
}

#[test]
fn a_corrupt_file_is_named() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    valid_source(&src);
    std::fs::write(
        src.join("worker_0/data/0-1.parquet"),
        b"PAR1 this is not parquet PAR1",
    )
    .unwrap();
    let out = dir.path().join("out");
    let o = import(&src, &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("0-1.parquet"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn points_of_different_widths_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    write_raw(
        &src.join("worker_0/data/0-0.parquet"),
        &[(1, "a", vec![1, 2, 3]), (2, "a", vec![1, 2])],
    );
    let o = import(&src, &dir.path().join("out"), &[]);
    assert!(!o.status.success());
    let e = stderr(&o);
    assert!(
        e.contains("0-0.parquet") && e.contains("2 coordinates"),
        "{e}"
    );
    assert!(!dir.path().join("out").exists());
}

#[test]
fn an_existing_dataset_is_never_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    valid_source(&dir.path().join("src"));
    let out = dir.path().join("out");
    std::fs::create_dir_all(&out).unwrap();
    std::fs::write(out.join("keep.txt"), b"precious").unwrap();
    let o = import(&dir.path().join("src"), &out, &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("not empty"), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("keep.txt")).unwrap(), b"precious");
}

#[test]
fn zstd_levels_outside_zstds_range_are_refused_and_write_nothing() {
    let dir = tempfile::tempdir().unwrap();
    valid_source(&dir.path().join("src"));
    for level in ["0", "23", "x"] {
        let out = dir.path().join("out");
        let o = import(&dir.path().join("src"), &out, &["--zstd-level", level]);
        assert!(!o.status.success(), "level {level}");
        assert!(stderr(&o).contains("--zstd-level"), "{}", stderr(&o));
        assert!(!out.exists(), "level {level} left {out:?}");
    }
    // A level in range gives the same dataset, compressed harder.
    let o = import(
        &dir.path().join("src"),
        &dir.path().join("out"),
        &["--zstd-level", "19"],
    );
    assert!(o.status.success(), "{}", stderr(&o));
    let manifest =
        Manifest::from_json(&std::fs::read(dir.path().join("out/manifest.json")).unwrap()).unwrap();
    assert_eq!((manifest.label_count, manifest.point_count), (3, 5));
}

#[test]
fn a_directory_without_pocaduck_data_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("src/other")).unwrap();
    let o = import(&dir.path().join("src"), &dir.path().join("out"), &[]);
    assert!(!o.status.success());
    assert!(stderr(&o).contains("no PoCADuck data"), "{}", stderr(&o));
    let o = import(&dir.path().join("missing"), &dir.path().join("out"), &[]);
    assert!(!o.status.success());
    assert!(!dir.path().join("out").exists());
}

#[test]
fn small_memory_budgets_take_more_passes_with_the_same_result() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    let rows: Vec<(i64, String, Vec<i64>)> = (0..40_000)
        .map(|i| (i % 20, format!("b{}", i % 3), vec![i, -i, i % 7]))
        .collect();
    let refs: Vec<(i64, &str, Vec<i64>)> = rows
        .iter()
        .map(|(l, b, p)| (*l, b.as_str(), p.clone()))
        .collect();
    write_raw(&src.join("worker_0/data/0-0.parquet"), &refs);
    let one = import(&src, &dir.path().join("one"), &[]);
    let many = import(&src, &dir.path().join("many"), &["--memory-mb", "1"]);
    assert!(one.status.success() && many.status.success());
    assert!(stderr(&one).contains("1 passes"), "{}", stderr(&one));
    assert!(!stderr(&many).contains(" 1 passes"), "{}", stderr(&many));
    let manifest = |d: &str| std::fs::read(dir.path().join(d).join("manifest.json")).unwrap();
    let (a, b) = (
        Manifest::from_json(&manifest("one")).unwrap(),
        Manifest::from_json(&manifest("many")).unwrap(),
    );
    assert_eq!((a.label_count, a.point_count), (20, 40_000));
    assert_eq!(
        a.files[0].etag, b.files[0].etag,
        "the same points file, byte for byte"
    );
}
