//! Arrow IPC messages checked before arrow-ipc reads them.
//!
//! arrow-ipc verifies a message's flatbuffer (`root_as_message` runs the flatbuffers
//! verifier), then trusts what the message says: its schema conversion panics on a list
//! without a child or an integer 7 bits wide, its record batch reader panics on a buffer
//! that lies past the message's body, and arrow-data's validation asserts on a buffer of
//! offsets that holds no whole number of them. The bytes of an answer, a stored file or a
//! VastDB reply are hostile until checked, and a panic aborts a server or traps a browser
//! (whose build aborts on panic), so the crates that read Arrow IPC check each message here
//! before arrow-ipc sees it. Union columns, which no reader of ours needs, are refused.
//!
//! No IO; builds for `wasm32-unknown-unknown`.

use arrow_ipc::{Message, MessageHeader, Type};
use arrow_schema::Schema;

/// Why an Arrow IPC message was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("a malformed Arrow IPC message: {0}")]
pub struct Malformed(pub String);

/// Result with [`Malformed`].
pub type Result<T, E = Malformed> = std::result::Result<T, E>;

fn bad(reason: impl Into<String>) -> Malformed {
    Malformed(reason.into())
}

/// The continuation marker that precedes a message's length in the stream format.
const CONTINUATION: u32 = u32::MAX;

/// Checks a verified message whose body is `body_len` bytes: its header is present, a
/// schema converts without a panic ([`check_schema`]), and a batch's nodes and buffers lie
/// inside the body.
pub fn check_message(message: &Message<'_>, body_len: usize) -> Result<()> {
    let missing = |what: &str| bad(format!("a {what} message without its header"));
    match message.header_type() {
        MessageHeader::Schema => check_schema(
            message
                .header_as_schema()
                .ok_or_else(|| missing("schema"))?,
        ),
        MessageHeader::RecordBatch => check_batch(
            &message
                .header_as_record_batch()
                .ok_or_else(|| missing("record batch"))?,
            body_len,
        ),
        MessageHeader::DictionaryBatch => {
            let dictionary = message
                .header_as_dictionary_batch()
                .ok_or_else(|| missing("dictionary batch"))?;
            let data = dictionary
                .data()
                .ok_or_else(|| bad("a dictionary batch without its record batch"))?;
            check_batch(&data, body_len)
        }
        other => Err(bad(format!("a {other:?} message"))),
    }
}

/// The Arrow schema of a schema header, checked first ([`check_schema`]).
pub fn schema(fb: arrow_ipc::Schema<'_>) -> Result<Schema> {
    check_schema(fb)?;
    Ok(arrow_ipc::convert::fb_to_schema(fb))
}

/// Checks that `arrow_ipc::convert::fb_to_schema` converts a schema header without a
/// panic: it has fields, and each field (and child) has a type arrow-ipc converts, with
/// the parameters and children that type needs.
pub fn check_schema(fb: arrow_ipc::Schema<'_>) -> Result<()> {
    let fields = fb.fields().ok_or_else(|| bad("a schema without fields"))?;
    let big_endian = fb.endianness() == arrow_ipc::Endianness::Big;
    fields
        .iter()
        .try_for_each(|field| check_field(field, big_endian))
}

/// Checks one field and its children (the flatbuffers verifier bounds their depth).
fn check_field(field: arrow_ipc::Field<'_>, big_endian: bool) -> Result<()> {
    let name = field.name().unwrap_or_default();
    let refuse = |what: String| Err(bad(format!("field {name:?}: {what}")));
    if let Some(dictionary) = field.dictionary() {
        match dictionary.indexType() {
            Some(index) if int_width(index.bitWidth()) => {}
            _ => return refuse("a dictionary without an 8 to 64-bit index type".into()),
        }
    }
    let children = field.children().map_or(0, |c| c.len());
    let ty = field.type_type();
    let ok = match ty {
        Type::Null
        | Type::Bool
        | Type::Binary
        | Type::BinaryView
        | Type::LargeBinary
        | Type::Utf8
        | Type::Utf8View
        | Type::LargeUtf8
        | Type::Struct_ => true,
        Type::Int => field.type_as_int().is_some_and(|t| int_width(t.bitWidth())),
        Type::FixedSizeBinary => field
            .type_as_fixed_size_binary()
            .is_some_and(|t| t.byteWidth() >= 0),
        Type::FloatingPoint => field.type_as_floating_point().is_some_and(|t| {
            matches!(
                t.precision(),
                arrow_ipc::Precision::HALF
                    | arrow_ipc::Precision::SINGLE
                    | arrow_ipc::Precision::DOUBLE
            )
        }),
        Type::Date => field.type_as_date().is_some_and(|t| {
            matches!(
                t.unit(),
                arrow_ipc::DateUnit::DAY | arrow_ipc::DateUnit::MILLISECOND
            )
        }),
        Type::Time => field.type_as_time().is_some_and(|t| {
            use arrow_ipc::TimeUnit as U;
            matches!(
                (t.bitWidth(), t.unit()),
                (32, U::SECOND | U::MILLISECOND) | (64, U::MICROSECOND | U::NANOSECOND)
            )
        }),
        Type::Timestamp => field
            .type_as_timestamp()
            .is_some_and(|t| time_unit(t.unit())),
        Type::Duration => field
            .type_as_duration()
            .is_some_and(|t| time_unit(t.unit())),
        Type::Interval => field.type_as_interval().is_some_and(|t| {
            use arrow_ipc::IntervalUnit as U;
            matches!(t.unit(), U::YEAR_MONTH | U::DAY_TIME | U::MONTH_DAY_NANO)
        }),
        Type::List | Type::LargeList | Type::ListView | Type::LargeListView => children == 1,
        Type::FixedSizeList => {
            children == 1
                && field
                    .type_as_fixed_size_list()
                    .is_some_and(|t| t.listSize() >= 0)
        }
        Type::Map => children == 1 && field.type_as_map().is_some(),
        Type::RunEndEncoded => children == 2,
        Type::Decimal => {
            !big_endian
                && field.type_as_decimal().is_some_and(|t| {
                    u8::try_from(t.precision()).is_ok()
                        && i8::try_from(t.scale()).is_ok()
                        && matches!(t.bitWidth(), 32 | 64 | 128 | 256)
                })
        }
        Type::Union => return refuse("union columns are not read".into()),
        _ => false,
    };
    if !ok {
        return refuse(format!(
            "a {ty:?} type with missing or bad parameters, or {children} children"
        ));
    }
    field
        .children()
        .into_iter()
        .flatten()
        .try_for_each(|child| check_field(child, big_endian))
}

/// Whether `width` is an integer width Arrow has.
fn int_width(width: i32) -> bool {
    matches!(width, 8 | 16 | 32 | 64)
}

/// Whether `unit` is one of the four time units.
fn time_unit(unit: arrow_ipc::TimeUnit) -> bool {
    use arrow_ipc::TimeUnit as U;
    matches!(
        unit,
        U::SECOND | U::MILLISECOND | U::MICROSECOND | U::NANOSECOND
    )
}

/// Checks a record batch header against a body of `body_len` bytes: lengths and counts
/// are not negative, and every buffer lies inside the body.
fn check_batch(batch: &arrow_ipc::RecordBatch<'_>, body_len: usize) -> Result<()> {
    if batch.length() < 0 {
        return Err(bad(format!("a batch of {} rows", batch.length())));
    }
    for node in batch.nodes().iter().flatten() {
        if node.length() < 0 || node.null_count() < 0 || node.null_count() > node.length() {
            return Err(bad(format!(
                "a column of {} rows with {} nulls",
                node.length(),
                node.null_count()
            )));
        }
    }
    for buffer in batch.buffers().iter().flatten() {
        let end = usize::try_from(buffer.offset())
            .ok()
            .zip(usize::try_from(buffer.length()).ok())
            .and_then(|(offset, length)| offset.checked_add(length));
        if end.is_none_or(|end| end > body_len) {
            return Err(bad(format!(
                "a buffer at {} of {} bytes outside the body's {body_len} bytes",
                buffer.offset(),
                buffer.length()
            )));
        }
    }
    if batch
        .variadicBufferCounts()
        .is_some_and(|counts| counts.iter().any(|n| n < 0))
    {
        return Err(bad("a negative variadic buffer count"));
    }
    Ok(())
}

/// Checks the columns of a batch of `schema`, walking its nodes and buffers in the order
/// arrow-ipc's reader takes them, for what the reader or arrow-data's validation would
/// panic on: a column with nulls has a validity buffer of a bit per row, and a buffer of
/// offsets, list sizes, views, dictionary keys or run ends holds a whole number of them
/// (arrow-data reads those as typed slices, and asserts on a ragged end). A batch with
/// fewer nodes or buffers than its schema needs is left to the reader, which refuses it.
pub fn check_columns(schema: &Schema, batch: &arrow_ipc::RecordBatch<'_>) -> Result<()> {
    let (Some(nodes), Some(buffers)) = (batch.nodes(), batch.buffers()) else {
        return Ok(());
    };
    let mut walk = Walk {
        nodes: nodes.iter(),
        buffers: buffers.iter(),
        variadic: batch
            .variadicBufferCounts()
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .into_iter(),
    };
    for field in schema.fields() {
        if walk.field(field.data_type(), false)?.is_none() {
            break;
        }
    }
    Ok(())
}

/// The nodes and buffers of a batch still to walk.
struct Walk<I, J, K> {
    nodes: I,
    buffers: J,
    variadic: K,
}

impl<'a, I, J, K> Walk<I, J, K>
where
    I: Iterator<Item = &'a arrow_ipc::FieldNode>,
    J: Iterator<Item = &'a arrow_ipc::Buffer>,
    K: Iterator<Item = i64>,
{
    /// Walks one column of `data_type` (the run ends of a run-end encoded column when
    /// `run_ends`); `None` when the batch ran out of nodes or buffers.
    fn field(&mut self, data_type: &arrow_schema::DataType, run_ends: bool) -> Result<Option<()>> {
        use arrow_schema::DataType as T;
        let Some(node) = self.nodes.next() else {
            return Ok(None);
        };
        let buffers = match data_type {
            T::Null | T::RunEndEncoded(..) => 0,
            T::FixedSizeList(..) | T::Struct(_) => 1,
            T::Utf8 | T::Binary | T::LargeUtf8 | T::LargeBinary => 3,
            T::ListView(_) | T::LargeListView(_) => 3,
            T::Utf8View | T::BinaryView => {
                let Some(count) = self.variadic.next() else {
                    return Ok(None);
                };
                2 + usize::try_from(count).unwrap_or(0)
            }
            _ => 2,
        };
        let mut validity = None;
        for i in 0..buffers {
            let Some(buffer) = self.buffers.next() else {
                return Ok(None);
            };
            if i == 0 {
                validity = Some(buffer.length());
            }
            if let Some(width) = value_width(data_type, i, run_ends) {
                if buffer.length() % width != 0 {
                    return Err(bad(format!(
                        "a {data_type} column's buffer {i} of {} bytes, not a whole number of \
                         {width}-byte values",
                        buffer.length()
                    )));
                }
            }
        }
        if let T::FixedSizeList(_, size) = data_type {
            if node.length().checked_mul(i64::from(*size)).is_none() {
                return Err(bad(format!(
                    "a column of {} lists of {size} values",
                    node.length()
                )));
            }
        }
        if let Some(length) = validity.filter(|_| node.null_count() > 0) {
            if length.saturating_mul(8) < node.length() {
                return Err(bad(format!(
                    "a column of {} rows with nulls and a validity buffer of {length} bytes",
                    node.length()
                )));
            }
        }
        let children: Vec<(&arrow_schema::DataType, bool)> = match data_type {
            T::List(f)
            | T::LargeList(f)
            | T::ListView(f)
            | T::LargeListView(f)
            | T::FixedSizeList(f, _)
            | T::Map(f, _) => vec![(f.data_type(), false)],
            T::Struct(fields) => fields.iter().map(|f| (f.data_type(), false)).collect(),
            T::RunEndEncoded(ends, values) => {
                vec![(ends.data_type(), true), (values.data_type(), false)]
            }
            _ => Vec::new(),
        };
        for (child, run_ends) in children {
            if self.field(child, run_ends)?.is_none() {
                return Ok(None);
            }
        }
        Ok(Some(()))
    }
}

/// The width of the values in buffer `i` of a column of `data_type` (the run ends of a
/// run-end encoded column when `run_ends`) that arrow-data reads as a typed slice.
fn value_width(data_type: &arrow_schema::DataType, i: usize, run_ends: bool) -> Option<i64> {
    use arrow_schema::DataType as T;
    let width = match (data_type, i) {
        (T::Utf8 | T::Binary | T::List(_) | T::Map(..), 1) => 4,
        (T::LargeUtf8 | T::LargeBinary | T::LargeList(_), 1) => 8,
        (T::ListView(_), 1 | 2) => 4,
        (T::LargeListView(_), 1 | 2) => 8,
        (T::Utf8View | T::BinaryView, 1) => 16,
        (T::Dictionary(key, _), 1) => key.primitive_width()?,
        (ends, 1) if run_ends => ends.primitive_width()?,
        _ => return None,
    };
    i64::try_from(width).ok()
}

/// Checks every message of a whole Arrow IPC stream, as arrow-ipc's `StreamReader` would
/// read it, before handing it to that reader: each message's flatbuffer verified and
/// checked ([`check_message`]), each body inside the bytes. The stream may end with its
/// end-of-stream marker or after a whole message.
pub fn check_stream(bytes: &[u8]) -> Result<()> {
    let cut = || bad("the stream is cut inside a message");
    let word = |at: usize| -> Result<u32> {
        let word = bytes.get(at..at.checked_add(4).ok_or_else(cut)?);
        let word = word.ok_or_else(cut)?;
        Ok(u32::from_le_bytes([word[0], word[1], word[2], word[3]]))
    };
    let mut at = 0usize;
    let mut schema_of_stream = None;
    while at < bytes.len() {
        let mut length = word(at)?;
        at += 4;
        if length == CONTINUATION {
            length = word(at)?;
            at += 4;
        }
        if length == 0 {
            return Ok(());
        }
        let header_end = at.checked_add(length as usize).ok_or_else(cut)?;
        let header = bytes.get(at..header_end).ok_or_else(cut)?;
        let message = arrow_ipc::root_as_message(header)
            .map_err(|e| bad(format!("a message header that does not verify: {e}")))?;
        let body_len = usize::try_from(message.bodyLength())
            .map_err(|_| bad(format!("a body of {} bytes", message.bodyLength())))?;
        let body_end = header_end.checked_add(body_len).ok_or_else(cut)?;
        if body_end > bytes.len() {
            return Err(cut());
        }
        check_message(&message, body_len)?;
        if let Some(fb) = message.header_as_schema() {
            schema_of_stream = Some(schema(fb)?);
        }
        if let (Some(schema), Some(batch)) = (&schema_of_stream, message.header_as_record_batch()) {
            check_columns(schema, &batch)?;
        }
        at = body_end;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use arrow_array::{Int64Array, RecordBatch};
    use arrow_ipc::writer::StreamWriter;
    use arrow_schema::{DataType, Field};

    use super::*;

    /// A schema message of one field of type `ty` (with `type_` as its parameters) and
    /// `children` fields of int64, as a flatbuffer.
    fn schema_message(ty: Type, parameters: bool, children: usize) -> Vec<u8> {
        let mut fbb = flatbuffers::FlatBufferBuilder::new();
        let mut kids = Vec::new();
        for _ in 0..children {
            let int = {
                let mut int = arrow_ipc::IntBuilder::new(&mut fbb);
                int.add_bitWidth(64);
                int.add_is_signed(true);
                int.finish()
            };
            let mut child = arrow_ipc::FieldBuilder::new(&mut fbb);
            child.add_type_type(Type::Int);
            child.add_type_(int.as_union_value());
            kids.push(child.finish());
        }
        let kids = fbb.create_vector(&kids);
        let list = arrow_ipc::ListBuilder::new(&mut fbb).finish();
        let name = fbb.create_string("points");
        let mut field = arrow_ipc::FieldBuilder::new(&mut fbb);
        field.add_name(name);
        field.add_type_type(ty);
        if parameters {
            field.add_type_(list.as_union_value());
        }
        field.add_children(kids);
        let field = field.finish();
        let fields = fbb.create_vector(&[field]);
        let mut schema = arrow_ipc::SchemaBuilder::new(&mut fbb);
        schema.add_fields(fields);
        let schema = schema.finish();
        let mut message = arrow_ipc::MessageBuilder::new(&mut fbb);
        message.add_version(arrow_ipc::MetadataVersion::V5);
        message.add_header_type(MessageHeader::Schema);
        message.add_header(schema.as_union_value());
        let message = message.finish();
        fbb.finish(message, None);
        fbb.finished_data().to_vec()
    }

    /// The flatbuffers verifier's verdict, then the check's.
    fn checked(bytes: &[u8]) -> Result<()> {
        let message = arrow_ipc::root_as_message(bytes).map_err(|e| Malformed(e.to_string()))?;
        check_message(&message, 0)
    }

    #[test]
    fn a_list_without_its_child_is_refused_and_with_it_converts() {
        let err = checked(&schema_message(Type::List, true, 0)).unwrap_err();
        assert!(err.0.contains("List type"), "{err}");
        assert!(checked(&schema_message(Type::List, true, 2)).is_err());
        let good = schema_message(Type::List, true, 1);
        checked(&good).unwrap();
        let message = arrow_ipc::root_as_message(&good).unwrap();
        let schema = schema(message.header_as_schema().unwrap()).unwrap();
        assert!(matches!(schema.field(0).data_type(), DataType::List(_)));
    }

    #[test]
    fn types_without_their_parameters_and_unions_are_refused() {
        // The verifier refuses a type without its parameters; the check, one whose
        // parameters are another type's.
        for ty in [
            Type::Int,
            Type::FixedSizeList,
            Type::Decimal,
            Type::Timestamp,
        ] {
            assert!(checked(&schema_message(ty, false, 1)).is_err(), "{ty:?}");
        }
        assert!(checked(&schema_message(Type::NONE, false, 0)).is_err());
        let err = checked(&schema_message(Type::Union, false, 0)).unwrap_err();
        assert!(err.0.contains("union"), "{err}");
    }

    /// A stream of one batch of `values` in column `x`.
    fn stream(values: Vec<i64>) -> Vec<u8> {
        let column = Arc::new(Int64Array::from(values));
        let schema = Arc::new(arrow_schema::Schema::new(vec![Field::new(
            "x",
            DataType::Int64,
            false,
        )]));
        let batch = RecordBatch::try_new(schema.clone(), vec![column]).unwrap();
        let mut writer = StreamWriter::try_new(Vec::new(), &schema).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap();
        writer.into_inner().unwrap()
    }

    #[test]
    fn real_streams_pass_and_cut_or_lying_ones_do_not() {
        let bytes = stream(vec![1, -2, i64::MAX]);
        check_stream(&bytes).unwrap();
        assert_eq!(check_stream(&bytes[..bytes.len() - 8]), Ok(()));
        for cut in [5, 12, bytes.len() - 9] {
            assert!(check_stream(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // The batch's body is 24 bytes: a buffer said to lie past it is refused, where
        // arrow-ipc's reader would panic.
        let batch_at = first_batch(&bytes);
        let message = arrow_ipc::root_as_message(&bytes[batch_at.0..batch_at.1]).unwrap();
        assert!(check_message(&message, 24).is_ok());
        let err = check_message(&message, 8).unwrap_err();
        assert!(err.0.contains("outside the body"), "{err}");
    }

    /// The header bytes of the stream's second message (its first batch).
    fn first_batch(bytes: &[u8]) -> (usize, usize) {
        let len = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        let schema_end = 8 + len(4);
        (schema_end + 8, schema_end + 8 + len(schema_end + 4))
    }
}
