//! Golden tests against the official SDK's captured traffic (`captures/`, see its README):
//! every captured request is rebuilt and signed byte for byte, every captured body decodes to
//! what our encoder produces for the same call, and the captured reply de-frames to the
//! rows the SDK returned.

use std::collections::BTreeMap;
use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::Int64Type;
use arrow_array::{Array, RecordBatch};
use arrow_ipc::reader::StreamReader;
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use pocaduck_edge_vastdb::deframe::{Limits, ReplyEnd};
use pocaduck_edge_vastdb::fbs::{arrow as arrow_fb, ir, tabular};
use pocaduck_edge_vastdb::query::{self, Condition, Filter, Op};
use pocaduck_edge_vastdb::request::{self, NameFilter, Page};
use pocaduck_edge_vastdb::schema::{
    column_node, column_of_node, from_flatbuffer, leaf_nodes, to_flatbuffer,
};
use pocaduck_edge_vastdb::{
    sign, Credentials, Endpoint, Error, Event, QueryCursor, QuerySettings, ReplyDecoder, Request,
    TablePath, INVALID_ROW_ID,
};
use serde_json::{json, Value as Json};

/// `20261124T030426Z`, the time of the captured session.
const CAPTURE_TIME: u64 = 1_795_489_466;

fn capture(name: &str) -> Vec<u8> {
    // Cargo sets the crate's directory when it runs a test too: read it then, so a test
    // binary built in another checkout of the same tree still finds the files.
    let dir = std::env::var("CARGO_MANIFEST_DIR").expect("cargo test sets CARGO_MANIFEST_DIR");
    std::fs::read(format!("{dir}/tests/captures/{name}")).unwrap_or_else(|e| panic!("{name}: {e}"))
}

fn capture_json(name: &str) -> Json {
    serde_json::from_slice(&capture(name)).unwrap()
}

/// The worked example's table: `label: uint64, points: list<int64>`.
fn worked_example_schema() -> Schema {
    Schema::new(vec![
        Field::new("label", DataType::UInt64, true),
        Field::new_list("points", Field::new("item", DataType::Int64, true), true),
    ])
}

fn table() -> TablePath {
    TablePath::new("mybucket", "s", "t").unwrap()
}

struct Captured {
    method: String,
    path: String,
    headers: BTreeMap<String, String>,
    body: Vec<u8>,
}

fn captured_requests() -> Vec<Captured> {
    String::from_utf8(capture("worked_example_requests.jsonl"))
        .unwrap()
        .lines()
        .map(|line| {
            let r: Json = serde_json::from_str(line).unwrap();
            let headers = r["headers"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.to_ascii_lowercase(), v.as_str().unwrap().to_owned()))
                .collect();
            let body = hex::decode(r["body_hex"].as_str().unwrap_or_default()).unwrap();
            Captured {
                method: r["method"].as_str().unwrap().to_owned(),
                path: r["path"].as_str().unwrap().to_owned(),
                headers,
                body,
            }
        })
        .collect()
}

/// Our request for a captured one, or `None` for the calls this client never makes.
fn rebuild(captured: &Captured) -> Option<Request> {
    let txid: u64 = captured
        .headers
        .get("tabular-txid")
        .map_or(0, |t| t.parse().unwrap());
    let page = |max_keys| Page {
        max_keys,
        next_key: 0,
    };
    let exact = |name: &str| NameFilter::Exact(name.to_owned());
    Some(match (captured.method.as_str(), captured.path.as_str()) {
        ("GET", "/?transaction") => request::version_probe(),
        ("POST", "/?transaction") => request::begin_transaction(),
        ("PUT", "/?transaction") => request::commit_transaction(txid),
        ("DELETE", "/?transaction") => request::rollback_transaction(txid),
        ("HEAD", "/mybucket") => request::head_bucket("mybucket").unwrap(),
        ("GET", "/mybucket?schema") => {
            request::list_schemas(txid, "mybucket", None, &exact("s"), page(1)).unwrap()
        }
        ("POST", "/mybucket/s?schema") => request::create_schema(txid, "mybucket", "s").unwrap(),
        ("GET", "/mybucket/s?table") => {
            request::list_tables(txid, "mybucket", "s", &exact("t"), page(1000), true).unwrap()
        }
        ("POST", "/mybucket/s/t?table") => {
            request::create_table(txid, &table(), &worked_example_schema()).unwrap()
        }
        ("GET", "/mybucket/s/t?column") => request::list_columns(txid, &table(), page(10000)),
        ("GET", "/mybucket/s/t?stats") => request::table_stats(txid, &table()),
        ("POST", "/mybucket/s/t?rows") => {
            request::insert_rows(txid, &table(), &read_stream(&captured.body)).unwrap()
        }
        ("GET", "/mybucket/s/t?data") => {
            let filter = Filter::all().and("label", Condition::eq(42u64));
            let query = query::encode(&worked_example_schema(), &["points"], &filter).unwrap();
            let mut cursor = QueryCursor::new(table(), query.body, QuerySettings::default());
            cursor.next_request(txid).unwrap()
        }
        // Only asked by SDKs talking to servers older than 5.5; not a call we make.
        ("GET", "/mybucket/s/t?sorted-columns") => return None,
        (method, path) => panic!("no builder for {method} {path}"),
    })
}

fn read_stream(body: &[u8]) -> RecordBatch {
    let mut reader = StreamReader::try_new(body, None).unwrap();
    let batch = reader.next().unwrap().unwrap();
    assert!(reader.next().is_none(), "one batch per insert");
    batch
}

#[test]
fn every_captured_request_is_rebuilt_and_signed_byte_for_byte() {
    let endpoint = Endpoint::parse("http://127.0.0.1:18090").unwrap();
    let credentials = Credentials::new("AKIAEXAMPLE", "SECRETEXAMPLE");
    let mut checked = 0;
    for captured in captured_requests() {
        let Some(mut ours) = rebuild(&captured) else {
            continue;
        };
        let what = format!("{} {}", captured.method, captured.path);
        assert_eq!(ours.method.as_str(), captured.method, "{what}");
        let query = if ours.query.is_empty() {
            String::new()
        } else {
            format!("?{}", ours.query)
        };
        assert_eq!(format!("{}{query}", ours.path), captured.path, "{what}");
        assert_eq!(endpoint.authority(), captured.headers["host"], "{what}");
        // Bodies are equal as values (checked below); the signature covers the captured bytes.
        ours.body = Bytes::from(captured.body.clone());
        sign(&mut ours, &endpoint, &credentials, CAPTURE_TIME).unwrap();
        let ours: BTreeMap<String, String> = ours
            .headers
            .iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v.clone()))
            .collect();
        let protocol_headers = |h: &BTreeMap<String, String>| -> BTreeMap<String, String> {
            h.iter()
                .filter(|(k, _)| {
                    k.starts_with("tabular-")
                        || k.starts_with("x-amz-")
                        || k.as_str() == "authorization"
                })
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        };
        assert_eq!(
            protocol_headers(&ours),
            protocol_headers(&captured.headers),
            "{what}"
        );
        checked += 1;
    }
    assert_eq!(checked, 23, "every captured call but ?sorted-columns");
}

#[test]
fn the_protocol_test_vector_signature() {
    // The worked example's `?data` request (captures/README.md, the SigV4 test vector).
    let endpoint = Endpoint::parse("http://127.0.0.1:18090").unwrap();
    let mut request = Request {
        method: http::Method::GET,
        path: "/mybucket/s/t".into(),
        query: "data".into(),
        headers: Vec::new(),
        body: Bytes::from(capture("query_req.bin")),
    };
    let credentials = Credentials::new("AKIAEXAMPLE", "SECRETEXAMPLE");
    sign(&mut request, &endpoint, &credentials, CAPTURE_TIME).unwrap();
    assert_eq!(
        request.header_value("x-amz-content-sha256"),
        Some("f84c13fde6e7dd81af802cd67bee52f9055f44a839fab698faff90ce024d8a34")
    );
    assert_eq!(
        request.header_value("authorization"),
        Some(
            "AWS4-HMAC-SHA256 Credential=AKIAEXAMPLE/20261124//s3/aws4_request, \
             SignedHeaders=host;x-amz-date, \
             Signature=4000ee9202c1cb38e90e8e3873493e0399dcc7404a44f81db911f864ba48612b"
        )
    );
    // Any other secret gives another signature.
    let mut other = request.clone();
    other.headers.clear();
    sign(
        &mut other,
        &endpoint,
        &Credentials::new("AKIAEXAMPLE", "x"),
        CAPTURE_TIME,
    )
    .unwrap();
    assert_ne!(
        other.header_value("authorization"),
        request.header_value("authorization")
    );
}

#[test]
fn create_schema_body_equals_the_sdks() {
    let ours = request::create_schema(1, "mybucket", "s").unwrap().body;
    let decode = |body: &[u8]| {
        let root =
            <tabular::CreateSchemaRequestRef as planus::ReadAsRoot>::read_as_root(body).unwrap();
        tabular::CreateSchemaRequest::try_from(root).unwrap()
    };
    let theirs = decode(&capture("create_schema_req.bin"));
    assert_eq!(theirs.properties.as_deref(), Some(""));
    assert_eq!(decode(&ours), theirs);
}

#[test]
fn create_table_body_is_the_sdks_schema_message() {
    let ours = request::create_table(1, &table(), &worked_example_schema())
        .unwrap()
        .body;
    let theirs = capture("create_table_req.bin");
    let read = |body: &[u8]| {
        assert_eq!(&body[..4], &[0xff; 4], "continuation marker");
        let message = arrow_ipc::root_as_message(&body[8..]).unwrap();
        arrow_ipc::convert::fb_to_schema(message.header_as_schema().unwrap())
    };
    assert_eq!(read(&ours), read(&theirs));
    assert_eq!(read(&theirs), worked_example_schema());
}

#[test]
fn insert_body_carries_the_same_batch() {
    let theirs = read_stream(&capture("insert_req.bin"));
    assert_eq!(theirs.num_rows(), 3);
    let ours = request::insert_rows(1, &table(), &theirs).unwrap().body;
    assert_eq!(read_stream(&ours), theirs);
}

fn decoded_worked_example() -> query::DecodedQuery {
    query::DecodedQuery {
        fields: vec![
            Arc::new(Field::new_list(
                "points",
                Field::new("item", DataType::Int64, true),
                true,
            )),
            Arc::new(Field::new("label", DataType::UInt64, true)),
        ],
        projection: vec![1],
        groups: vec![(1, vec![Condition::eq(42u64)])],
    }
}

#[test]
fn the_captured_query_body_decodes_to_the_worked_example() {
    let theirs = query::decode(&capture("query_req.bin")).unwrap();
    assert_eq!(theirs, decoded_worked_example());
    let filter = Filter::all().and("label", Condition::eq(42u64));
    let ours = query::encode(&worked_example_schema(), &["points"], &filter).unwrap();
    assert_eq!(query::decode(&ours.body).unwrap(), theirs);
    assert_eq!(
        as_json(&ours.body),
        normalise(flatc_to_serde(capture_json("query_req.json")))
    );
}

fn three_column_schema() -> Schema {
    Schema::new(vec![
        Field::new("label", DataType::UInt64, true),
        Field::new_list("points", Field::new("item", DataType::Int64, true), true),
        Field::new("name", DataType::Utf8, true),
    ])
}

#[test]
fn isin_is_one_or_group_as_the_sdk_sends_it() {
    // `select(columns=['name','label'], predicate=t['label'].isin([41,43]))`
    let filter = Filter::all().and_any("label", [41u64, 43].map(Condition::eq));
    let ours = query::encode(&three_column_schema(), &["name", "label"], &filter).unwrap();
    assert_eq!(
        as_json(&ours.body),
        normalise(flatc_to_serde(capture_json("query_req_isin.json")))
    );
}

#[test]
fn and_with_row_ids_as_the_sdk_sends_it() {
    // `select(predicate=(label==42)&(name=='d'), internal_row_id=True)`
    let filter = Filter::all()
        .and("label", Condition::eq(42u64))
        .and("name", Condition::eq("d"));
    let ours = query::encode_with_row_id(
        &three_column_schema(),
        &["label", "points", "name"],
        &filter,
    )
    .unwrap();
    assert_eq!(
        as_json(&ours.body),
        normalise(flatc_to_serde(capture_json("query_req_and_rowid.json")))
    );
}

/// The nested table of `query_req_nested_examples.txt`.
fn nested_schema() -> Schema {
    use arrow_schema::Fields;
    let entries = Field::new(
        "entries",
        DataType::Struct(Fields::from(vec![
            Field::new("key", DataType::Utf8, false),
            Field::new("value", DataType::Float64, true),
        ])),
        false,
    );
    let inner = Field::new_list("item", Field::new("item", DataType::Int16, true), true);
    Schema::new(vec![
        Field::new("id", DataType::Int64, true),
        Field::new(
            "s",
            DataType::Struct(Fields::from(vec![
                Field::new("x", DataType::Int32, true),
                Field::new("y", DataType::Utf8, true),
            ])),
            true,
        ),
        Field::new("m", DataType::Map(Arc::new(entries), false), true),
        Field::new_list("ll", inner, true),
        Field::new_fixed_size_list("fsl", Field::new("item", DataType::Float32, true), 2, true),
        Field::new("ts", DataType::Timestamp(TimeUnit::Microsecond, None), true),
        Field::new("d", DataType::Decimal128(10, 2), true),
    ])
}

#[test]
fn leaves_are_numbered_in_pre_order_as_the_sdk_does() {
    // query_req_nested_examples.txt: `select()` projects [0, 2, 3, 6, 7, 10, 12, 13, 14].
    let schema = nested_schema();
    let fields = schema.fields();
    let leaves: Vec<u32> = (0..fields.len())
        .flat_map(|c| leaf_nodes(fields, c))
        .collect();
    assert_eq!(leaves, [0, 2, 3, 6, 7, 10, 12, 13, 14]);
    assert_eq!(column_node(fields, 1), 1);
    assert_eq!(column_node(fields, 6), 14);
    assert_eq!(column_of_node(fields, 3), Some(1));
    assert_eq!(column_of_node(fields, 10), Some(3));
    assert_eq!(column_of_node(fields, 15), None);
}

#[test]
fn nested_fields_survive_the_flatbuffer_both_ways() {
    for field in nested_schema().fields() {
        let encoded = to_flatbuffer(field, true).unwrap();
        assert_eq!(&from_flatbuffer(&encoded).unwrap(), field.as_ref());
    }
}

#[test]
fn map_entries_are_tagged_map_as_the_sdk_writes_them() {
    let schema = nested_schema();
    let encoded = to_flatbuffer(&schema.fields()[2], true).unwrap();
    let entries = &encoded.children.as_ref().unwrap()[0];
    assert!(matches!(entries.type_, Some(arrow_fb::Type::Map(_))));
    assert_eq!(entries.children.as_ref().unwrap().len(), 2);
}

#[test]
fn nested_examples_number_and_filter_as_the_sdk_does() {
    let text = String::from_utf8(capture("query_req_nested_examples.txt")).unwrap();
    let blocks: Vec<BTreeMap<&str, &str>> = text
        .split("\n\n")
        .map(|block| {
            block
                .lines()
                .filter(|l| !l.starts_with('#'))
                .filter_map(|l| l.split_once(char::is_whitespace))
                .map(|(k, v)| (k, v.trim()))
                .collect()
        })
        .filter(|b: &BTreeMap<&str, &str>| !b.is_empty())
        .collect();
    assert_eq!(blocks.len(), 7);
    let schema = nested_schema();
    let all: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
    // The calls we encode: select(), id.between(2,3), ts.isnull(), select(columns=[]).
    let calls: [(usize, Vec<&str>, Filter); 4] = [
        (0, all, Filter::all()),
        (
            2,
            vec!["id"],
            Filter::all().and("id", Condition::between(2i64, 3i64)),
        ),
        (3, vec!["id"], Filter::all().and("ts", Condition::IsNull)),
        (6, vec![], Filter::all()),
    ];
    for (block, columns, filter) in calls {
        let ours = query::encode(&schema, &columns, &filter).unwrap();
        let expected = &blocks[block];
        assert_eq!(
            render_projection(&ours.body),
            expected["projection"],
            "{block}"
        );
        assert_eq!(render_filter(&ours.body), expected["filter"], "{block}");
    }
    // The others filter on a struct member, a decimal and a string prefix of a struct member:
    // refused with a clear error rather than sent wrong.
    let refused = [
        query::encode(
            &schema,
            &["id", "s"],
            &Filter::all().and("s", Condition::eq(3i32)),
        ),
        query::encode(
            &schema,
            &["id"],
            &Filter::all().and("d", Condition::compare(Op::Gt, 2i64)),
        ),
    ];
    for outcome in refused {
        assert!(
            matches!(
                outcome,
                Err(Error::UnsupportedType { .. } | Error::LiteralType { .. })
            ),
            "{outcome:?}"
        );
    }
}

fn source(body: &[u8]) -> ir::Source {
    let root = <ir::RelationRef as planus::ReadAsRoot>::read_as_root(body).unwrap();
    match ir::Relation::try_from(root).unwrap().impl_ {
        Some(ir::RelationImpl::Source(source)) => *source,
        other => panic!("{other:?}"),
    }
}

fn render_projection(body: &[u8]) -> String {
    let positions: Vec<String> = source(body)
        .projection
        .unwrap_or_default()
        .iter()
        .map(|p| p.position.to_string())
        .collect();
    format!("[{}]", positions.join(", "))
}

/// The filter in the notation of `query_req_nested_examples.txt`.
fn render_filter(body: &[u8]) -> String {
    fn render(e: &ir::Expression) -> String {
        match e.impl_.as_ref().unwrap() {
            ir::ExpressionImpl::Call(call) => {
                let args: Vec<String> = call.arguments.iter().flatten().map(render).collect();
                format!("{}({})", call.name.as_deref().unwrap(), args.join(", "))
            }
            ir::ExpressionImpl::FieldRef(r) => match r.ref_.as_ref().unwrap() {
                ir::Deref::FieldIndex(i) => format!("#{}", i.position),
                other => panic!("{other:?}"),
            },
            ir::ExpressionImpl::Literal(l) => {
                let value = serde_json::to_value(l.impl_.as_ref().unwrap()).unwrap();
                let (kind, inner) = value.as_object().unwrap().iter().next().unwrap();
                let type_ = serde_json::to_value(l.type_.as_ref().unwrap().type_.as_ref().unwrap())
                    .unwrap();
                let type_name = type_.as_object().unwrap().keys().next().unwrap().clone();
                format!("{kind}:{}[{type_name}]", inner["value"])
            }
            other => panic!("{other:?}"),
        }
    }
    render(source(body).filter.as_ref().unwrap())
}

/// Our body as JSON in the shape serde gives the generated types, defaults dropped.
fn as_json(body: &[u8]) -> Json {
    let root = <ir::RelationRef as planus::ReadAsRoot>::read_as_root(body).unwrap();
    normalise(serde_json::to_value(ir::Relation::try_from(root).unwrap()).unwrap())
}

/// flatc's JSON (`x_type` tag beside `x`, camelCase names) in serde's shape
/// (`x_: {Tag: value}`, snake_case, `type`/`impl`/`ref` with a trailing underscore).
fn flatc_to_serde(value: Json) -> Json {
    fn rename(key: &str) -> String {
        let mut out = String::new();
        for c in key.chars() {
            if c.is_ascii_uppercase() {
                out.push('_');
                out.push(c.to_ascii_lowercase());
            } else {
                out.push(c);
            }
        }
        match out.as_str() {
            "type" | "impl" | "ref" => format!("{out}_"),
            _ => out,
        }
    }
    match value {
        Json::Object(map) => {
            let mut out = serde_json::Map::new();
            for (key, value) in &map {
                if key
                    .strip_suffix("_type")
                    .is_some_and(|base| map.contains_key(base))
                {
                    continue;
                }
                let converted = flatc_to_serde(value.clone());
                let converted = match map.get(&format!("{key}_type")) {
                    Some(Json::String(tag)) => json!({ tag.clone(): converted }),
                    _ => converted,
                };
                out.insert(rename(key), converted);
            }
            Json::Object(out)
        }
        Json::Array(items) => Json::Array(items.into_iter().map(flatc_to_serde).collect()),
        other => other,
    }
}

/// Drops what a flatbuffer does not store: nulls, zeros, `false` and the default endianness.
fn normalise(value: Json) -> Json {
    match value {
        Json::Object(map) => Json::Object(
            map.into_iter()
                .filter(|(_, v)| {
                    !(v.is_null() || v == &json!(0) || v == &json!(false) || v == &json!("Little"))
                })
                .map(|(k, v)| (k, normalise(v)))
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.into_iter().map(normalise).collect()),
        other => other,
    }
}

fn response_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![Field::new_list(
        "points",
        Field::new("item", DataType::Int64, true),
        true,
    )]))
}

/// Decodes `reply` fed in the given pieces: the rows per sub-split, the rounds and the end.
/// Rows per sub-split, the rounds as (sub-split, next row id), and how the reply ended.
type Decoded = (BTreeMap<u32, Vec<Vec<i64>>>, Vec<(u32, u64)>, ReplyEnd);

fn decode_reply(pieces: &[&[u8]]) -> Result<Decoded, Error> {
    let mut decoder = ReplyDecoder::new(response_schema(), 4, Limits::default())?;
    let mut events = Vec::new();
    for piece in pieces {
        decoder.push(piece, &mut events)?;
    }
    let end = decoder.finish()?;
    let mut rows: BTreeMap<u32, Vec<Vec<i64>>> = BTreeMap::new();
    let mut rounds = Vec::new();
    for event in events {
        match event {
            Event::Batch { sub_split, batch } => {
                let lists = batch.column(0).as_list::<i32>();
                for i in 0..lists.len() {
                    let values = lists.value(i);
                    rows.entry(sub_split)
                        .or_default()
                        .push(values.as_primitive::<Int64Type>().values().to_vec());
                }
            }
            Event::RoundDone {
                sub_split,
                next_row_id,
            } => rounds.push((sub_split, next_row_id)),
        }
    }
    Ok((rows, rounds, end))
}

#[test]
fn the_captured_reply_deframes_to_the_sdks_rows() {
    let reply = capture("query_resp.bin");
    let (rows, rounds, end) = decode_reply(&[&reply]).unwrap();
    assert_eq!(rows, BTreeMap::from([(0, vec![vec![3, 4, 5], vec![6]])]));
    assert_eq!(
        rounds,
        (0..4).map(|s| (s, INVALID_ROW_ID)).collect::<Vec<_>>()
    );
    assert_eq!(end, ReplyEnd::Completed);
    // Pieces cut anywhere give the same answer.
    for cut in 1..reply.len() {
        let (head, tail) = reply.split_at(cut);
        assert_eq!(decode_reply(&[head, tail]).unwrap().0, rows, "cut at {cut}");
    }
    let bytes: Vec<&[u8]> = reply.chunks(1).collect();
    assert_eq!(decode_reply(&bytes).unwrap().0, rows);
}

#[test]
fn a_truncated_reply_is_an_error_except_between_sub_splits() {
    let reply = capture("query_resp.bin");
    // query_resp.framing.txt: sub-split streams start at these offsets, COMPLETED at 0x6c0.
    let clean = [0, 0x1d4, 0x378, 0x51c, 0x6c0];
    for len in 0..reply.len() {
        let outcome = decode_reply(&[&reply[..len]]);
        if clean.contains(&len) {
            assert_eq!(outcome.unwrap().2, ReplyEnd::Eof, "{len}");
        } else {
            assert!(
                matches!(outcome, Err(Error::Truncated(_))),
                "{len}: {outcome:?}"
            );
        }
    }
}

#[test]
fn keep_alives_between_chunks_change_nothing() {
    let reply = capture("query_resp.bin");
    let keep_alive = [0xff_u8; 4];
    let mut with = Vec::new();
    for (i, range) in [0..0xc4, 0xc4..0x1c0, 0x1c0..0x1d4, 0x1d4..reply.len()]
        .into_iter()
        .enumerate()
    {
        with.extend_from_slice(&keep_alive[..4 * usize::from(i > 0)]);
        with.extend_from_slice(&keep_alive);
        with.extend_from_slice(&reply[range]);
    }
    assert_eq!(
        decode_reply(&[&with]).unwrap().0,
        decode_reply(&[&reply]).unwrap().0
    );
}

#[test]
fn a_failed_stream_is_an_error_with_its_code() {
    let reply = capture("query_resp.bin");
    let mut failed = reply[..0x1d4].to_vec();
    failed.extend_from_slice(&0xFFFF_FFFD_u32.to_le_bytes());
    failed.extend_from_slice(&17_u64.to_le_bytes());
    failed.extend_from_slice(&0_u32.to_le_bytes());
    assert!(matches!(
        decode_reply(&[&failed]),
        Err(Error::QueryFailed { code: 17 })
    ));
}

#[test]
fn replies_beyond_the_requested_sub_splits_or_limits_are_refused() {
    let reply = capture("query_resp.bin");
    let mut stray = reply.clone();
    stray[0] = 9; // stream id 9 of 4 sub-splits
    assert!(matches!(
        decode_reply(&[&stray]),
        Err(Error::Malformed { .. })
    ));

    let limits = Limits {
        max_message_bytes: 100,
        ..Limits::default()
    };
    let mut decoder = ReplyDecoder::new(response_schema(), 4, limits).unwrap();
    let outcome = decoder.push(&reply, &mut Vec::new());
    assert!(
        matches!(outcome, Err(Error::LimitExceeded(_))),
        "{outcome:?}"
    );

    let mut garbage = reply[..12].to_vec();
    garbage.extend_from_slice(&[0xff, 0xff, 0xff, 0xff, 16, 0, 0, 0]);
    garbage.extend_from_slice(&[0x55; 16]);
    assert!(matches!(
        decode_reply(&[&garbage]),
        Err(Error::Malformed { .. })
    ));
}

#[test]
fn a_round_drives_the_cursor_to_completion() {
    let filter = Filter::all().and("label", Condition::eq(42u64));
    let query = query::encode(&worked_example_schema(), &["points"], &filter).unwrap();
    let mut cursor = QueryCursor::new(table(), query.body, QuerySettings::default());
    assert!(cursor.next_request(1).is_some());
    let mut decoder = ReplyDecoder::new(query.response_schema, 4, Limits::default()).unwrap();
    let mut events = Vec::new();
    decoder
        .push(&capture("query_resp.bin"), &mut events)
        .unwrap();
    for event in &events {
        cursor.observe(event).unwrap();
    }
    cursor.end_reply().unwrap();
    assert!(cursor.is_done());
    assert!(cursor.next_request(1).is_none());
}
