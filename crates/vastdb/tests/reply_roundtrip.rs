//! Replies written by `frame` and read back by `deframe`: any rows, any number of rounds and
//! sub-splits, keep-alives anywhere and the bytes cut anywhere give back exactly the rows.

use std::sync::Arc;

use arrow_array::builder::{Int64Builder, ListBuilder};
use arrow_array::{Array, ArrayRef, RecordBatch, RecordBatchOptions, UInt64Array};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::BytesMut;
use pocaduck_edge_vastdb::deframe::{Limits, ReplyEnd};
use pocaduck_edge_vastdb::{frame, Event, ReplyDecoder, INVALID_ROW_ID};
use proptest::prelude::*;

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("label", DataType::UInt64, false),
        Field::new_list("points", Field::new("item", DataType::Int64, true), true),
    ]))
}

type Rows = Vec<(u64, Vec<i64>)>;

fn batch(rows: &Rows) -> RecordBatch {
    let labels = UInt64Array::from_iter_values(rows.iter().map(|r| r.0));
    let mut points = ListBuilder::new(Int64Builder::new());
    for (_, values) in rows {
        points.values().append_slice(values);
        points.append(true);
    }
    let columns: Vec<ArrayRef> = vec![Arc::new(labels), Arc::new(points.finish())];
    RecordBatch::try_new(schema(), columns).unwrap()
}

fn rows_of(batch: &RecordBatch) -> Rows {
    let labels = batch
        .column(0)
        .as_any()
        .downcast_ref::<UInt64Array>()
        .unwrap();
    let points = batch
        .column(1)
        .as_any()
        .downcast_ref::<arrow_array::ListArray>()
        .unwrap();
    (0..batch.num_rows())
        .map(|i| {
            let values = points.value(i);
            let values = values
                .as_any()
                .downcast_ref::<arrow_array::Int64Array>()
                .unwrap();
            (labels.value(i), values.values().to_vec())
        })
        .collect()
}

fn decode(bytes: &[u8], cuts: &[usize], sub_splits: u32) -> (Vec<Rows>, Vec<(u32, u64)>, ReplyEnd) {
    let mut decoder = ReplyDecoder::new(schema(), sub_splits, Limits::default()).unwrap();
    let mut events = Vec::new();
    let mut start = 0;
    for &cut in cuts.iter().chain(std::iter::once(&bytes.len())) {
        let cut = cut.clamp(start, bytes.len());
        decoder.push(&bytes[start..cut], &mut events).unwrap();
        start = cut;
    }
    let end = decoder.finish().unwrap();
    let mut rows = vec![Vec::new(); sub_splits as usize];
    let mut rounds = Vec::new();
    for event in events {
        match event {
            Event::Batch { sub_split, batch } => rows[sub_split as usize].extend(rows_of(&batch)),
            Event::RoundDone {
                sub_split,
                next_row_id,
            } => rounds.push((sub_split, next_row_id)),
        }
    }
    (rows, rounds, end)
}

fn row() -> impl Strategy<Value = (u64, Vec<i64>)> {
    (any::<u64>(), prop::collection::vec(any::<i64>(), 0..20))
}

proptest! {
    #[test]
    fn rows_survive_framing(
        rounds in prop::collection::vec((0u32..3, prop::collection::vec(row(), 0..12)), 0..8),
        keep_alives in prop::collection::vec(any::<bool>(), 8),
        mut cuts in prop::collection::vec(0usize..4096, 0..6),
    ) {
        let mut out = BytesMut::new();
        let mut expected = vec![Vec::new(); 3];
        let mut expected_rounds = Vec::new();
        for (i, (sub_split, rows)) in rounds.iter().enumerate() {
            if keep_alives[i] {
                out.extend_from_slice(&frame::keep_alive());
            }
            let next_row_id = if i + 1 == rounds.len() { INVALID_ROW_ID } else { i as u64 + 1 };
            write_round(&mut out, *sub_split, next_row_id, &batch(rows));
            expected[*sub_split as usize].extend(rows.iter().cloned());
            expected_rounds.push((*sub_split, next_row_id));
        }
        out.extend_from_slice(&frame::completed());
        cuts.sort_unstable();
        let (rows, rounds, end) = decode(&out, &cuts, 3);
        prop_assert_eq!(rows, expected);
        prop_assert_eq!(rounds, expected_rounds);
        prop_assert_eq!(end, ReplyEnd::Completed);
    }
}

/// A round appended to `out`, its pieces joined.
fn write_round(out: &mut BytesMut, sub_split: u32, next_row_id: u64, batch: &RecordBatch) {
    let pieces = frame::round_pieces(
        sub_split,
        next_row_id,
        &batch.schema(),
        std::slice::from_ref(batch),
    );
    for piece in pieces.unwrap() {
        out.extend_from_slice(&piece);
    }
}

#[test]
fn a_stream_with_a_schema_and_no_batch_is_an_empty_leaf() {
    // What `frame` writes for an empty batch, with the batch chunks taken out.
    let mut one = BytesMut::new();
    write_round(&mut one, 0, INVALID_ROW_ID, &batch(&Vec::new()));
    let mut full = BytesMut::new();
    write_round(&mut full, 0, 5, &batch(&vec![(1, vec![2])]));
    // Rebuild: for each of the two leaf streams, its schema chunk then its EOS chunk.
    let chunks = split_chunks(&one);
    assert_eq!(chunks.len(), 6);
    let mut no_batches = Vec::new();
    for i in [0, 2, 3, 5] {
        no_batches.extend_from_slice(chunks[i]);
    }
    no_batches.extend_from_slice(&full);
    let (rows, rounds, end) = decode(&no_batches, &[], 1);
    assert_eq!(rows, vec![vec![(1, vec![2])]]);
    assert_eq!(rounds, [(0, INVALID_ROW_ID), (0, 5)]);
    assert_eq!(end, ReplyEnd::Eof);
}

/// Splits framed bytes into chunks (header and IPC message), all of them complete.
fn split_chunks(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut at = 0;
    while at < bytes.len() {
        let meta = u32::from_le_bytes(bytes[at + 16..at + 20].try_into().unwrap()) as usize;
        let len = if meta == 0 {
            20
        } else {
            let message = arrow_ipc::root_as_message(&bytes[at + 20..at + 20 + meta]).unwrap();
            20 + meta + message.bodyLength() as usize
        };
        out.push(&bytes[at..at + len]);
        at += len;
    }
    out
}

#[test]
fn count_only_rounds_carry_a_row_count() {
    let empty = Arc::new(Schema::empty());
    let options = RecordBatchOptions::new().with_row_count(Some(7));
    let batch = RecordBatch::try_new_with_options(empty.clone(), vec![], &options).unwrap();
    let mut out = BytesMut::new();
    write_round(&mut out, 1, INVALID_ROW_ID, &batch);
    out.extend_from_slice(&frame::completed());
    let mut decoder = ReplyDecoder::new(empty, 2, Limits::default()).unwrap();
    let mut events = Vec::new();
    decoder.push(&out, &mut events).unwrap();
    let counted: Vec<usize> = events
        .iter()
        .filter_map(|e| match e {
            Event::Batch { batch, .. } => Some(batch.num_rows()),
            Event::RoundDone { .. } => None,
        })
        .collect();
    assert_eq!(counted, [7]);
}

#[test]
fn leaves_arriving_with_another_layout_compatible_type_get_the_tables_type() {
    // The server names the list's child `element`; the table says `item`.
    let server = Arc::new(Schema::new(vec![Field::new_list(
        "points",
        Field::new("element", DataType::Int64, false),
        true,
    )]));
    let mut builder = ListBuilder::new(Int64Builder::new()).with_field(Field::new(
        "element",
        DataType::Int64,
        false,
    ));
    builder.values().append_slice(&[1, -2, i64::MAX]);
    builder.append(true);
    let sent = RecordBatch::try_new(server, vec![Arc::new(builder.finish())]).unwrap();
    let mut out = BytesMut::new();
    write_round(&mut out, 0, INVALID_ROW_ID, &sent);
    let table = Arc::new(Schema::new(vec![schema().field(1).clone()]));
    let mut decoder = ReplyDecoder::new(table.clone(), 1, Limits::default()).unwrap();
    let mut events = Vec::new();
    decoder.push(&out, &mut events).unwrap();
    let Event::Batch { batch, .. } = &events[0] else {
        panic!("{events:?}")
    };
    assert_eq!(batch.schema(), table);
    assert_eq!(batch.column(0).len(), 1);
}

#[test]
fn multi_leaf_columns_are_refused_up_front() {
    let nested = Arc::new(Schema::new(vec![Field::new_struct(
        "s",
        vec![
            Field::new("x", DataType::Int32, true),
            Field::new("y", DataType::Int32, true),
        ],
        true,
    )]));
    assert!(ReplyDecoder::new(nested, 1, Limits::default()).is_err());
}

/// The row counts of the batches a reply decodes to, and its rows.
fn batch_sizes(bytes: &[u8]) -> (Vec<usize>, Rows) {
    let mut decoder = ReplyDecoder::new(schema(), 1, Limits::default()).unwrap();
    let mut events = Vec::new();
    decoder.push(bytes, &mut events).unwrap();
    let mut sizes = Vec::new();
    let mut rows = Vec::new();
    for event in &events {
        if let Event::Batch { batch, .. } = event {
            sizes.push(batch.num_rows());
            rows.extend(rows_of(batch));
        }
    }
    assert!(matches!(events.last(), Some(Event::RoundDone { .. })));
    (sizes, rows)
}

#[test]
fn leaves_cut_alike_come_as_their_batches_and_others_joined() {
    let all: Rows = (0..6).map(|i| (i, vec![i as i64; i as usize])).collect();
    let (a, b) = (batch(&all[..2].to_vec()), batch(&all[2..].to_vec()));
    // Every leaf in the same two pieces: two batches, no copy.
    let mut out = BytesMut::new();
    for piece in frame::round_pieces(0, INVALID_ROW_ID, &schema(), &[a.clone(), b.clone()]).unwrap()
    {
        out.extend_from_slice(&piece);
    }
    assert_eq!(batch_sizes(&out), (vec![2, 4], all.clone()));
    // Labels in two pieces, points in one: one joined batch.
    let whole = batch(&all);
    let mut out = BytesMut::new();
    let labels = Arc::new(schema().project(&[0]).unwrap());
    let points = Arc::new(schema().project(&[1]).unwrap());
    let leaves = [
        frame::round_pieces(
            0,
            INVALID_ROW_ID,
            &labels,
            &[a.project(&[0]).unwrap(), b.project(&[0]).unwrap()],
        ),
        frame::round_pieces(0, INVALID_ROW_ID, &points, &[whole.project(&[1]).unwrap()]),
    ];
    for piece in leaves.into_iter().flat_map(Result::unwrap) {
        out.extend_from_slice(&piece);
    }
    assert_eq!(batch_sizes(&out), (vec![6], all));
}
