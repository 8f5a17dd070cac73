//! Corrupt copies of real bytes fed to the decoders that the reader and the npm client use:
//! a points file of the sample (`sample --voxel-nm 256`), the server's Arrow and Parquet
//! answers over it, its manifest and its label index. Each copy is a clear error or the
//! same points: never a panic that reaches the reader (the Parquet crate's own, inside page
//! decoding, become errors at the reading layer's boundary), never an allocation past the
//! decoder's bound, and never other points unless the file's content hash (its ETag in the
//! manifest, xxh3) differs, which is what guards a stored file.

use std::ops::Range;
use std::sync::OnceLock;

use bytes::Bytes;
use parquet::file::metadata::{
    FileMetaData, ParquetMetaData, ParquetMetaDataReader, ParquetMetaDataWriter,
};
use pocaduck_edge_core::answer::{decode_arrow, decode_parquet, Labelled};
use pocaduck_edge_core::ipc::columns_layout;
use pocaduck_edge_core::read::{column_range, parse_footer};
use pocaduck_edge_core::{Error, IndexPage, Manifest};
use pocaduck_edge_read::untrusted::decode_untrusted;

use crate::common;

/// The real bytes the cases corrupt.
struct Sample {
    manifest: Vec<u8>,
    /// The first points file, whole.
    points: Vec<u8>,
    /// Its ETag in the manifest (xxh3 of its bytes, hex).
    points_etag: String,
    /// The first page of the label index.
    page: Vec<u8>,
    /// A label's answers: Arrow rows, Arrow columns, Parquet.
    arrow_rows: Vec<u8>,
    arrow_columns: Vec<u8>,
    parquet: Vec<u8>,
}

/// The sample, built once, and a label's answers from `serve` over it.
fn sample() -> &'static Sample {
    static SAMPLE: OnceLock<Sample> = OnceLock::new();
    SAMPLE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("sample");
        common::run(&["sample", data.to_str().unwrap(), "--voxel-nm", "256"]);
        let manifest_bytes = std::fs::read(data.join("manifest.json")).unwrap();
        let manifest = Manifest::from_json(&manifest_bytes).unwrap();
        let file = &manifest.files[0];
        let points = std::fs::read(data.join(&file.path)).unwrap();
        let index = std::fs::read(data.join(&manifest.label_index.file.path)).unwrap();
        let first = manifest.label_index.pages[0].range;
        let page = index[first.offset as usize..first.end() as usize].to_vec();
        // The label of the most points in the first page.
        let label = IndexPage::decode(&page)
            .unwrap()
            .entries
            .iter()
            .max_by_key(|e| e.point_count)
            .unwrap()
            .label;
        let mut serve = common::command(common::bin(), None);
        serve.args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--data",
            data.to_str().unwrap(),
        ]);
        let (_server, url) = common::spawn_listening(serve);
        let answer = |query: &str| {
            let url = format!("{url}/v1/datasets/sample/labels/{label}/points?{query}");
            let response = common::client().get(&url).send().unwrap();
            assert!(response.status().is_success(), "{url}");
            response.bytes().unwrap().to_vec()
        };
        Sample {
            arrow_rows: answer("format=arrow"),
            arrow_columns: answer("format=arrow&shape=columns"),
            parquet: answer("format=parquet"),
            manifest: manifest_bytes,
            points,
            points_etag: file.etag.clone(),
            page,
        }
    })
}

/// A decoded answer as points: its runs, and every row as int64.
fn points(labelled: &Labelled) -> (Vec<(u64, Range<usize>)>, Vec<i64>) {
    let runs: Vec<_> = labelled
        .runs
        .iter()
        .map(|r| (r.label, r.rows.clone()))
        .collect();
    let rows = runs.last().map_or(0, |(_, r)| r.end);
    (runs, labelled.int64(0..rows))
}

/// The footer of a Parquet file: its metadata, and where its data ends.
fn footer_of(file: &[u8]) -> (ParquetMetaData, usize) {
    let meta = ParquetMetaDataReader::new()
        .parse_and_finish(&Bytes::copy_from_slice(file))
        .unwrap();
    let len = u32::from_le_bytes(file[file.len() - 8..file.len() - 4].try_into().unwrap());
    (meta, file.len() - 8 - len as usize)
}

/// `file` with its footer's metadata replaced by `edit` of it (written as Parquet's thrift).
fn edited(file: &[u8], edit: impl FnOnce(ParquetMetaData) -> ParquetMetaData) -> Vec<u8> {
    let (meta, data_end) = footer_of(file);
    let mut out = file[..data_end].to_vec();
    let meta = edit(meta);
    ParquetMetaDataWriter::new(&mut out, &meta)
        .finish()
        .unwrap();
    out
}

/// The byte ranges of every column chunk of a Parquet file: its data pages.
fn column_chunks(file: &[u8]) -> Vec<Range<usize>> {
    let (meta, _) = footer_of(file);
    meta.row_groups()
        .iter()
        .flat_map(|g| g.columns())
        .map(|c| {
            let r = column_range(c).unwrap();
            r.offset as usize..r.end() as usize
        })
        .collect()
}

/// Where each message of an Arrow IPC stream starts and ends (its continuation marker to
/// the end of its body), the end-of-stream marker last.
fn arrow_messages(stream: &[u8]) -> Vec<Range<usize>> {
    let word = |at: usize| u32::from_le_bytes(stream[at..at + 4].try_into().unwrap()) as usize;
    let mut out = Vec::new();
    let mut at = 0;
    while at < stream.len() {
        let meta = word(at + 4);
        if meta == 0 {
            out.push(at..at + 8);
            break;
        }
        let message = arrow_ipc::root_as_message(&stream[at + 8..at + 8 + meta]).unwrap();
        let end = at + 8 + meta + message.bodyLength() as usize;
        out.push(at..end);
        at = end;
    }
    out
}

/// Cuts of `len` bytes worth trying: each of `boundaries` and a byte either side, and
/// every `len / 97`th byte.
fn cuts(len: usize, boundaries: impl IntoIterator<Item = usize>) -> Vec<usize> {
    let mut out: Vec<usize> = boundaries
        .into_iter()
        .flat_map(|b| [b.saturating_sub(1), b, b + 1])
        .chain((0..len).step_by((len / 97).max(1)))
        .filter(|c| *c < len)
        .collect();
    out.sort_unstable();
    out.dedup();
    out
}

/// Asserts that `result` is a decoding error of the answer's or file's bytes.
fn assert_decode_error<T: std::fmt::Debug>(result: Result<T, Error>, case: &str) {
    match result {
        Err(Error::Parquet { .. } | Error::Points(_) | Error::Ipc(_) | Error::Arrow(_)) => {}
        other => panic!("{case}: expected a decoding error, got {other:?}"),
    }
}

#[test]
fn a_points_file_cut_anywhere_is_an_error() {
    let s = sample();
    let file = &s.points;
    let (_, data_end) = footer_of(file);
    let chunks = column_chunks(file);
    let boundaries = chunks.iter().flat_map(|c| [c.start, c.end]).chain([
        4,
        data_end,
        file.len() - 8,
        file.len() - 4,
    ]);
    let cuts = cuts(file.len(), boundaries);
    assert!(cuts.len() > 100, "{} cuts", cuts.len());
    for cut in cuts {
        let case = format!("the points file cut at {cut} of {}", file.len());
        assert_decode_error(decode_parquet(Bytes::copy_from_slice(&file[..cut])), &case);
    }
    // The footer range as the reader fetches it, cut at either end.
    let footer = &file[data_end..];
    for cut in 1..footer.len() {
        assert_decode_error(
            parse_footer("p", &footer[cut..]),
            "a footer cut at its start",
        );
        assert_decode_error(parse_footer("p", &footer[..cut]), "a footer cut at its end");
    }
}

#[test]
fn a_bit_flipped_in_a_data_page_decodes_the_same_points_or_fails_or_changes_the_hash() {
    let s = sample();
    let file = &s.points;
    let whole = points(&decode_parquet(Bytes::copy_from_slice(file)).unwrap());
    assert_eq!(
        format!("{:016x}", xxhash_rust::xxh3::xxh3_64(file)),
        s.points_etag,
        "the manifest's ETag is the file's xxh3"
    );
    let data: Vec<usize> = column_chunks(file).into_iter().flatten().collect();
    let (mut failed, mut same, mut other, mut boundary) = (0, 0, 0, 0);
    for (i, at) in data.iter().step_by((data.len() / 400).max(1)).enumerate() {
        let mut flipped = file.clone();
        flipped[*at] ^= 1 << (i % 8);
        // The Parquet crate (59.3.2) panics on a variable-length integer longer than 10
        // bytes (`BitReader::get_vlq_int`: its assertion, or first, where overflow checks
        // are on as in this build, its shift), which a flipped bit in a compressed page can
        // decode to: decoded as the reading layer decodes stored bytes, at its boundary,
        // that panic is an error too (`Err` here; the decoder's own errors are `Ok(Err)`).
        let decoded = decode_untrusted(|| {
            Ok::<_, std::convert::Infallible>(decode_parquet(Bytes::from(flipped.clone())))
        });
        let decoded = match decoded {
            Ok(decoded) => decoded,
            Err(message) => {
                assert!(
                    message.contains("MAX_VLQ_BYTE_LEN")
                        || message.contains("attempt to shift left with overflow"),
                    "a bit flipped at {at}: {message}"
                );
                boundary += 1;
                continue;
            }
        };
        match decoded {
            Err(e) => {
                assert_decode_error::<()>(Err(e), &format!("a bit flipped at {at}"));
                failed += 1;
            }
            Ok(decoded) if points(&decoded) == whole => same += 1,
            Ok(_) => {
                // Other points: only the file's hash, which the reader checks, tells.
                assert_ne!(
                    format!("{:016x}", xxhash_rust::xxh3::xxh3_64(&flipped)),
                    s.points_etag
                );
                other += 1;
            }
        }
    }
    eprintln!(
        "bit flips in data pages: {failed} failed, {same} decoded the same points, {other} \
         other points (caught by the file's hash), {boundary} failed at the reading layer's \
         boundary (a panic of the Parquet crate)"
    );
    assert!(failed + same + other + boundary >= 300);
}

#[test]
fn wrong_magic_and_huge_lengths_are_errors() {
    let s = sample();
    let file = &s.points;
    let n = file.len();
    let mut head = file.clone();
    head[..4].copy_from_slice(b"PAR0");
    assert_decode_error(decode_parquet(Bytes::from(head)), "a wrong leading magic");
    // The footer broken: the whole file and its footer range.
    let mut cases: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut tail = file.clone();
    tail[n - 4..].copy_from_slice(b"PAR2");
    cases.push(("a wrong trailing magic", tail));
    for len in [u32::MAX, i32::MAX as u32, n as u32 - 7] {
        let mut huge = file.clone();
        huge[n - 8..n - 4].copy_from_slice(&len.to_le_bytes());
        cases.push(("a huge footer length", huge));
    }
    for (case, bytes) in &cases {
        assert_decode_error(decode_parquet(Bytes::copy_from_slice(bytes)), case);
        let (_, data_end) = footer_of(file);
        assert_decode_error(parse_footer("p", &bytes[data_end..]), case);
    }
    // Arrow: a message, or its body, said to run far past the answer.
    let arrow = &s.arrow_rows;
    let messages = arrow_messages(arrow);
    for len in [u32::MAX - 1, i32::MAX as u32, arrow.len() as u32] {
        let mut huge = arrow.clone();
        let at = messages[1].start + 4;
        huge[at..at + 4].copy_from_slice(&len.to_le_bytes());
        assert_decode_error(
            decode_arrow(Bytes::from(huge)),
            "a huge Arrow message length",
        );
    }
    let mut not_arrow = arrow.clone();
    not_arrow[..4].copy_from_slice(b"PAR1");
    assert_decode_error(
        decode_arrow(Bytes::from(not_arrow)),
        "a stream of no message",
    );
}

/// A schema message (continuation, length, flatbuffer, padding) of `label: uint64` and
/// `points: fixed_size_list[3]` whose list has no child field.
fn childless_list_schema() -> Vec<u8> {
    let mut fbb = flatbuffers::FlatBufferBuilder::new();
    let mut fields = Vec::new();
    let label_name = fbb.create_string("label");
    let int = {
        let mut int = arrow_ipc::IntBuilder::new(&mut fbb);
        int.add_bitWidth(64);
        int.add_is_signed(false);
        int.finish()
    };
    let mut label = arrow_ipc::FieldBuilder::new(&mut fbb);
    label.add_name(label_name);
    label.add_type_type(arrow_ipc::Type::Int);
    label.add_type_(int.as_union_value());
    fields.push(label.finish());
    let points_name = fbb.create_string("points");
    let list = {
        let mut list = arrow_ipc::FixedSizeListBuilder::new(&mut fbb);
        list.add_listSize(3);
        list.finish()
    };
    let no_children = fbb.create_vector::<flatbuffers::WIPOffset<arrow_ipc::Field>>(&[]);
    let mut points = arrow_ipc::FieldBuilder::new(&mut fbb);
    points.add_name(points_name);
    points.add_type_type(arrow_ipc::Type::FixedSizeList);
    points.add_type_(list.as_union_value());
    points.add_children(no_children);
    fields.push(points.finish());
    let fields = fbb.create_vector(&fields);
    let mut schema = arrow_ipc::SchemaBuilder::new(&mut fbb);
    schema.add_fields(fields);
    let schema = schema.finish();
    let mut message = arrow_ipc::MessageBuilder::new(&mut fbb);
    message.add_version(arrow_ipc::MetadataVersion::V5);
    message.add_header_type(arrow_ipc::MessageHeader::Schema);
    message.add_header(schema.as_union_value());
    let message = message.finish();
    fbb.finish(message, None);
    let meta = fbb.finished_data();
    let padded = meta.len().next_multiple_of(8);
    let mut out = u32::MAX.to_le_bytes().to_vec();
    out.extend_from_slice(&(padded as u32).to_le_bytes());
    out.extend_from_slice(meta);
    out.resize(8 + padded, 0);
    out
}

#[test]
fn an_arrow_answer_cut_anywhere_or_with_a_childless_list_is_an_error() {
    let s = sample();
    for answer in [&s.arrow_rows, &s.arrow_columns] {
        let whole = decode_arrow(Bytes::copy_from_slice(answer)).unwrap();
        assert!(!whole.runs.is_empty());
        let boundaries: Vec<usize> = arrow_messages(answer)
            .iter()
            .flat_map(|m| [m.start, m.start + 4, m.start + 8, m.end])
            .collect();
        for cut in cuts(answer.len(), boundaries) {
            let case = format!("an Arrow answer cut at {cut} of {}", answer.len());
            let bytes = &answer[..cut];
            assert_decode_error(decode_arrow(Bytes::copy_from_slice(bytes)), &case);
            let layout = columns_layout(cut, |r| std::borrow::Cow::Borrowed(&bytes[r]));
            assert_decode_error(layout, &case);
        }
    }
    // The rows answer with its schema replaced by one whose points list has no child:
    // arrow-ipc's conversion would panic on it.
    let answer = &s.arrow_rows;
    let schema = arrow_messages(answer)[0].clone();
    let mut broken = childless_list_schema();
    broken.extend_from_slice(&answer[schema.end..]);
    match decode_arrow(Bytes::copy_from_slice(&broken)) {
        Err(Error::Ipc(e)) => assert!(e.0.contains("children"), "{e}"),
        other => panic!("a childless list: {other:?}"),
    }
    let layout = columns_layout(broken.len(), |r| std::borrow::Cow::Borrowed(&broken[r]));
    assert!(matches!(layout, Err(Error::Ipc(_))), "{layout:?}");
}

#[test]
fn a_footer_with_a_negative_offset_or_2_to_the_40_rows_is_an_error() {
    let s = sample();
    for file in [&s.points, &s.parquet] {
        let negative = edited(file, |meta| {
            let mut groups = meta.row_groups().to_vec();
            let mut columns = groups[0].columns().to_vec();
            columns[1] = columns[1]
                .clone()
                .into_builder()
                .set_dictionary_page_offset(None)
                .set_data_page_offset(-1)
                .build()
                .unwrap();
            groups[0] = groups[0]
                .clone()
                .into_builder()
                .set_column_metadata(columns)
                .build()
                .unwrap();
            ParquetMetaData::new(meta.file_metadata().clone(), groups)
        });
        let many = edited(file, |meta| {
            let f = meta.file_metadata();
            let rows = 1i64 << 40;
            let file_meta = FileMetaData::new(
                f.version(),
                rows,
                f.created_by().map(str::to_owned),
                f.key_value_metadata().cloned(),
                f.schema_descr_ptr(),
                f.column_orders().cloned(),
            );
            let mut groups = meta.row_groups().to_vec();
            groups[0] = groups[0]
                .clone()
                .into_builder()
                .set_num_rows(rows)
                .build()
                .unwrap();
            ParquetMetaData::new(file_meta, groups)
        });
        for (case, bytes, says) in [
            ("an offset of -1", negative, "byte range"),
            ("2^40 rows", many, "rows in"),
        ] {
            let (_, data_end) = footer_of(&bytes);
            for result in [
                decode_parquet(Bytes::copy_from_slice(&bytes)).map(|_| ()),
                parse_footer("p", &bytes[data_end..]).map(|_| ()),
            ] {
                match result {
                    Err(Error::Points(e)) => assert!(e.contains(says), "{case}: {e}"),
                    other => panic!("{case}: {other:?}"),
                }
            }
        }
    }
}

#[test]
fn a_cut_or_changed_manifest_or_index_page_is_an_error() {
    let s = sample();
    let manifest = &s.manifest;
    for cut in cuts(manifest.len(), []) {
        let result = Manifest::from_json(&manifest[..cut]);
        assert!(matches!(result, Err(Error::Manifest(_))), "cut at {cut}");
    }
    let text = String::from_utf8(manifest.clone()).unwrap();
    let parsed = Manifest::from_json(manifest).unwrap();
    let etag = &parsed.files[0].etag;
    let path = &parsed.files[0].path;
    for (case, bad) in [
        ("a non-ASCII ETag", text.replacen(etag.as_str(), "é", 1)),
        (
            "a quote in an ETag",
            text.replacen(etag.as_str(), "a\\\"b", 1),
        ),
        (
            "a path out of the dataset",
            text.replacen(path.as_str(), "../../etc/passwd", 1),
        ),
        (
            "an absolute path",
            text.replacen(path.as_str(), "/etc/passwd", 1),
        ),
        (
            "a footer range past 2^64",
            text.replacen("\"offset\":", "\"offset\": 18446744073709551615, \"x\":", 1),
        ),
    ] {
        let result = Manifest::from_json(bad.as_bytes());
        assert!(
            matches!(result, Err(Error::Manifest(_))),
            "{case}: {result:?}"
        );
    }
    let page = &s.page;
    for cut in 0..page.len() {
        let result = IndexPage::decode(&page[..cut]);
        assert!(
            matches!(result, Err(Error::Index(_))),
            "a page cut at {cut}"
        );
    }
}
