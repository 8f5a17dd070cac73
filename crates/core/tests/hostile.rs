//! Hostile inputs: each kept under `tests/hostile/ENTRY/KIND-NAME.bin`, an input that made
//! a decoder panic or abort (found by the fuzz targets in `fuzz/` or by reading the code),
//! fed to the entry point it crashed and answered with an error of its kind; and the
//! decoder's allocation bound, held under an allocator that refuses more.

use std::alloc::System;
use std::borrow::Cow;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use arrow_array::{Int32Array, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Field, Schema};
use bytes::Bytes;
use cap::Cap;
use parquet::arrow::ArrowWriter;
use parquet::file::metadata::{
    FileMetaData, ParquetMetaData, ParquetMetaDataReader, ParquetMetaDataWriter,
};
use parquet::file::properties::WriterProperties;
use pocaduck_edge_core::answer::{decode_arrow, decode_parquet};
use pocaduck_edge_core::ipc::columns_layout;
use pocaduck_edge_core::manifest::{
    ByteRange, DataFile, LabelIndex, FORMAT_NAME, FORMAT_VERSION, POINT_ORDER,
};
use pocaduck_edge_core::plan::plan_blocks;
use pocaduck_edge_core::read::{parse_footer, SparseFile, MAX_PRESIZED_VALUES};
use pocaduck_edge_core::reader::{PointsPlan, Selection};
use pocaduck_edge_core::{Error, IndexPage, Manifest};

#[global_allocator]
static ALLOCATOR: Cap<System> = Cap::new(System, usize::MAX);

/// The tests that bound the allocator run one at a time.
static BOUNDED: Mutex<()> = Mutex::new(());

/// The kept inputs of `entry`: each file's name and bytes.
fn kept(entry: &str) -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/tests/hostile/{entry}", env!("CARGO_MANIFEST_DIR"));
    let Ok(files) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<(String, Vec<u8>)> = files
        .map(|f| {
            let path = f.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// The kind of error a kept input's name begins with.
fn kind_of(name: &str) -> &str {
    name.split('-').next().unwrap()
}

/// Whether `error` is of `kind`.
fn is_kind(error: &Error, kind: &str) -> bool {
    matches!(
        (kind, error),
        ("ipc", Error::Ipc(_))
            | ("points", Error::Points(_))
            | ("parquet", Error::Parquet { .. })
            | ("arrow", Error::Arrow(_))
            | ("index", Error::Index(_))
            | ("manifest", Error::Manifest(_))
    )
}

/// The kept inputs of `entry` whose name begins with `kind`.
fn kept_of_kind(entry: &str, kind: &str) -> Vec<(String, Vec<u8>)> {
    let mut inputs = kept(entry);
    inputs.retain(|(name, _)| kind_of(name) == kind);
    inputs
}

/// Feeds each kept input of `entry` (but those of kind `panic`) to `run` and checks its
/// error's kind.
fn each_kept(entry: &str, run: impl Fn(&[u8]) -> Result<(), Error>) -> usize {
    let mut inputs = kept(entry);
    inputs.retain(|(name, _)| kind_of(name) != "panic");
    for (name, bytes) in &inputs {
        match run(bytes) {
            Err(e) => assert!(is_kind(&e, kind_of(name)), "{entry}/{name}: {e:?}"),
            Ok(()) => panic!("{entry}/{name} was accepted"),
        }
    }
    inputs.len()
}

#[test]
fn kept_arrow_answers_are_errors_of_their_kind() {
    let n = each_kept("decode_arrow", |bytes| {
        // The headers-only fast path reads it without a panic, whatever it finds (it leaves
        // what it does not take to the general decoder); the decoder refuses it.
        let _ = columns_layout(bytes.len(), |r| Cow::Borrowed(&bytes[r]));
        decode_arrow(Bytes::copy_from_slice(bytes)).map(|_| ())
    });
    assert!(n > 0, "no kept Arrow answer");
}

#[test]
fn kept_parquet_answers_are_errors_of_their_kind() {
    let n = each_kept("decode_parquet", |bytes| {
        decode_parquet(Bytes::copy_from_slice(bytes)).map(|_| ())
    });
    assert!(n > 0, "no kept Parquet answer");
}

/// The kept Parquet answers of kind `panic`: the Parquet crate panics inside its page
/// decoding (a varint of more than 10 bytes; a delta page that claims no values), where no
/// check of this crate reaches. The reading layer's boundary and the npm client turn the
/// panic into an error, and test that with these same inputs; this test fails once the
/// crate returns an error instead (then name the input after that error).
#[test]
fn kept_parquet_panics_still_panic_in_the_parquet_crate() {
    let inputs = kept_of_kind("decode_parquet", "panic");
    assert!(inputs.len() >= 2, "{} kept panics", inputs.len());
    for (name, bytes) in inputs {
        let decoded = std::panic::catch_unwind(|| decode_parquet(Bytes::from(bytes)));
        assert!(decoded.is_err(), "{name}: {decoded:?}");
    }
}

#[test]
fn kept_manifests_and_index_pages_are_errors_of_their_kind() {
    let manifests = each_kept("manifest", |bytes| Manifest::from_json(bytes).map(|_| ()));
    let pages = each_kept("index_page", |bytes| IndexPage::decode(bytes).map(|_| ()));
    assert!(manifests + pages > 0, "no kept manifest or index page");
}

/// A manifest of `dims` dims whose points file and coarse file are `size` bytes, all of
/// it their footer range (as the `points_plan` fuzz target builds it).
fn plan_manifest(dims: usize, size: u64) -> Manifest {
    let file = |path: &str| DataFile {
        path: path.into(),
        size,
        etag: "0".into(),
        rows: 0,
        footer: Some(ByteRange {
            offset: 0,
            length: size,
        }),
        footer_xxh3: None,
    };
    Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        dims: (0..dims).map(|d| format!("d{d}")).collect(),
        voxel_size_nm: None,
        label_count: 0,
        point_count: 0,
        bbox: None,
        point_order: POINT_ORDER.into(),
        files: vec![file("points/part-00000.parquet")],
        coarse: vec![file("coarse/part-00000.parquet")],
        label_index: LabelIndex {
            file: file("index/labels.idx"),
            pages: Vec::new(),
        },
        blocks: None,
        attribution: None,
    }
}

/// The `points_plan` fuzz target's steps, the first error returned: an index page and a
/// footer (a `u32` length, the page, the footer), every entry planned and decoded.
fn plan_points(bytes: &[u8]) -> Result<(), Error> {
    let short = || Error::Index("the input is shorter than its page".into());
    let (head, rest) = bytes.split_at_checked(4).ok_or_else(short)?;
    let page_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let (page, footer) = rest.split_at_checked(page_len).ok_or_else(short)?;
    let page = IndexPage::decode(page)?;
    let meta = parse_footer("points/part-00000.parquet", footer)?;
    let manifest = plan_manifest(page.dims, footer.len() as u64);
    let footer_of = |file: u32| (file < 2).then_some(&*meta);
    let mut fetched = SparseFile::new(footer.len() as u64);
    fetched.insert(0, Bytes::copy_from_slice(footer));
    let files = HashMap::from([(0, fetched.clone()), (1, fetched)]);
    for entry in &page.entries {
        plan_blocks(entry, &meta)?;
        for (limit, piece_bytes) in [
            (None, u64::MAX),
            (Some(entry.point_count / 3), 4096),
            (Some(1), 1),
        ] {
            let plan = PointsPlan::new(&manifest, [entry], Selection { limit, bbox: None });
            plan.pieces(footer_of, piece_bytes)?;
            plan.decode(&manifest, footer_of, &files)?;
        }
    }
    Ok(())
}

#[test]
fn kept_plans_are_errors_of_their_kind() {
    each_kept("points_plan", plan_points);
}

/// A Parquet answer of `rows` points (label, x, y, z), the label constant, in one row group.
fn answer(rows: usize) -> Vec<u8> {
    let schema = Arc::new(Schema::new(vec![
        Field::new("label", DataType::UInt64, false),
        Field::new("x", DataType::Int32, false),
        Field::new("y", DataType::Int32, false),
        Field::new("z", DataType::Int32, false),
    ]));
    let coordinate = |k: i32| {
        Arc::new(Int32Array::from_iter_values(
            (0..rows as i32).map(|i| i.wrapping_mul(k) % 9973),
        ))
    };
    let batch = RecordBatch::try_new(
        schema.clone(),
        vec![
            Arc::new(UInt64Array::from(vec![7u64; rows])),
            coordinate(31),
            coordinate(57),
            coordinate(89),
        ],
    )
    .unwrap();
    let props = WriterProperties::builder()
        .set_max_row_group_row_count(Some(rows))
        .build();
    let mut writer = ArrowWriter::try_new(Vec::new(), schema, Some(props)).unwrap();
    writer.write(&batch).unwrap();
    writer.into_inner().unwrap()
}

/// `file` whose footer says its row group, and the file, hold `rows` rows.
fn claiming_rows(file: &[u8], rows: i64) -> Vec<u8> {
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::copy_from_slice(file))
        .unwrap();
    let len = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
    let mut out = file[..file.len() - 8 - len as usize].to_vec();
    let f = meta.file_metadata();
    let file_meta = FileMetaData::new(
        f.version(),
        rows,
        f.created_by().map(str::to_owned),
        f.key_value_metadata().cloned(),
        f.schema_descr_ptr(),
        f.column_orders().cloned(),
    );
    let group = meta.row_group(0).clone().into_builder().set_num_rows(rows);
    let edited = ParquetMetaData::new(file_meta, vec![group.build().unwrap()]);
    ParquetMetaDataWriter::new(&mut out, &edited)
        .finish()
        .unwrap();
    out
}

#[test]
fn a_footer_claiming_more_rows_than_its_pages_hold_is_decoded_within_a_bound() {
    let _one_at_a_time = BOUNDED.lock().unwrap();
    let file = answer(20_000);
    assert_eq!(
        decode_parquet(Bytes::from(file.clone())).unwrap().runs[0].rows,
        0..20_000
    );
    // Nearly as many rows as the footer's plausibility bound lets through (1024 per byte
    // of the row group's column chunks): a vector sized by the claim would take 8 bytes
    // per row.
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::copy_from_slice(&file))
        .unwrap();
    let group_bytes: i64 = meta
        .row_group(0)
        .columns()
        .iter()
        .map(|c| c.compressed_size())
        .sum();
    let claimed = group_bytes * 1000;
    assert!(
        claimed as usize > 16 * MAX_PRESIZED_VALUES,
        "{claimed} rows"
    );
    let lying = claiming_rows(&file, claimed);
    let bound = 256 << 20;
    assert!(
        (claimed as usize) * 8 > bound,
        "the claim must exceed the bound to test it"
    );
    ALLOCATOR
        .set_limit(ALLOCATOR.allocated() + bound)
        .expect("a limit above what is allocated");
    let result = decode_parquet(Bytes::from(lying));
    ALLOCATOR.set_limit(usize::MAX).unwrap();
    match result {
        Err(Error::Points(e)) => assert!(e.contains("ended early") || e.contains("fewer"), "{e}"),
        other => panic!("{other:?}"),
    }
}
