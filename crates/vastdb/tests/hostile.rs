//! Hostile replies: each kept under `tests/hostile/ENTRY/KIND-NAME.bin`, an input that made
//! the de-framer or a metadata parser panic (found by the fuzz targets in `fuzz/` or by
//! reading the code), fed to the entry point it crashed and answered with an error of its
//! kind.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema};
use pocaduck_edge_vastdb::deframe::Limits;
use pocaduck_edge_vastdb::{reply, Error, ReplyDecoder};

/// The kept inputs of `entry`: each file's name and bytes.
fn kept(entry: &str) -> Vec<(String, Vec<u8>)> {
    let dir = format!("{}/tests/hostile/{entry}", env!("CARGO_MANIFEST_DIR"));
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|f| {
            let path = f.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    out
}

/// Whether `error` is of `kind`, the first word of a kept input's name.
fn is_kind(error: &Error, kind: &str) -> bool {
    matches!(
        (kind, error),
        ("malformed", Error::Malformed { .. })
            | ("ipc", Error::Ipc { .. })
            | ("truncated", Error::Truncated(_))
            | ("limit", Error::LimitExceeded(_))
    )
}

/// Feeds each kept input of `entry` to `run` and checks its error's kind.
fn each_kept(entry: &str, run: impl Fn(&[u8]) -> Result<(), Error>) {
    let inputs = kept(entry);
    assert!(!inputs.is_empty(), "no kept input of {entry}");
    for (name, bytes) in &inputs {
        let kind = name.split('-').next().unwrap();
        match run(bytes) {
            Err(e) => assert!(is_kind(&e, kind), "{entry}/{name}: {e:?}"),
            Ok(()) => panic!("{entry}/{name} was accepted"),
        }
    }
}

/// The `vastdb_reply` fuzz target's steps, the first error returned: one byte (bit 0: the
/// schema; bits 1–3: the piece size; bits 4–7: sub-splits − 1), then the reply, pushed in
/// pieces.
fn deframe(data: &[u8]) -> Result<(), Error> {
    let (&first, reply) = data.split_first().expect("a kept reply has its first byte");
    let schema = if first & 1 == 0 {
        Schema::new(vec![Field::new_list(
            "points",
            Field::new("item", DataType::Int64, true),
            true,
        )])
    } else {
        Schema::new(vec![
            Field::new("label", DataType::UInt64, true),
            Field::new("x", DataType::Int32, true),
            Field::new("y", DataType::Int32, true),
            Field::new("z", DataType::Int32, true),
        ])
    };
    let piece = usize::from((first >> 1) & 7) * 97 + 1;
    let sub_splits = u32::from(first >> 4) + 1;
    let limits = Limits {
        max_message_bytes: 1 << 20,
        max_round_bytes: 4 << 20,
    };
    let mut decoder = ReplyDecoder::new(Arc::new(schema), sub_splits, limits)?;
    let mut events = Vec::new();
    for chunk in reply.chunks(piece) {
        decoder.push(chunk, &mut events)?;
    }
    decoder.finish().map(|_| ())
}

#[test]
fn kept_replies_are_errors_of_their_kind() {
    each_kept("reply", deframe);
}

#[test]
fn kept_column_listings_and_insert_replies_are_errors_of_their_kind() {
    each_kept("columns", |body| reply::parse_columns(body).map(|_| ()));
    each_kept("row_ids", |body| reply::parse_row_ids(body).map(|_| ()));
}
