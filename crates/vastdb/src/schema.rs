//! Arrow fields as the query body carries them (the flatbuffer `Schema` table, not an IPC
//! message), and the protocol's node numbering: a pre-order walk over the fields in which a
//! struct's fields, a list's value field and a map's `entries`/`key`/`value` follow their
//! parent. Predicates and projections name columns by these numbers.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Fields, TimeUnit};

use crate::error::{Error, Result};
use crate::fbs::arrow as fb;

/// The children of a field in node order (empty for a leaf).
pub fn children(data_type: &DataType) -> Vec<&Field> {
    match data_type {
        DataType::Struct(fields) => fields.iter().map(|f| f.as_ref()).collect(),
        DataType::List(item) | DataType::LargeList(item) | DataType::FixedSizeList(item, _) => {
            vec![item.as_ref()]
        }
        DataType::Map(entries, _) => vec![entries.as_ref()],
        _ => Vec::new(),
    }
}

/// The number of nodes a field occupies (itself and all its descendants).
pub fn node_count(field: &Field) -> u32 {
    1 + children(field.data_type())
        .into_iter()
        .map(node_count)
        .sum::<u32>()
}

/// The leaf node numbers of `fields[column]` when `fields` are numbered from 0.
pub fn leaf_nodes(fields: &[Arc<Field>], column: usize) -> Vec<u32> {
    fn walk(field: &Field, next: &mut u32, out: &mut Vec<u32>) {
        let node = *next;
        *next += 1;
        let children = children(field.data_type());
        if children.is_empty() {
            out.push(node);
        }
        for child in children {
            walk(child, next, out);
        }
    }
    let mut next: u32 = fields[..column].iter().map(|f| node_count(f)).sum();
    let mut out = Vec::new();
    walk(&fields[column], &mut next, &mut out);
    out
}

/// The node number of top-level column `column`.
pub fn column_node(fields: &[Arc<Field>], column: usize) -> u32 {
    fields[..column].iter().map(|f| node_count(f)).sum()
}

/// The top-level column that node `node` belongs to, if any.
pub fn column_of_node(fields: &[Arc<Field>], node: u32) -> Option<usize> {
    let mut start = 0;
    for (column, field) in fields.iter().enumerate() {
        let end = start + node_count(field);
        if (start..end).contains(&node) {
            return Some(column);
        }
        start = end;
    }
    None
}

/// Encodes an Arrow field for a query body; `named` is false for a literal's type, which the
/// SDK writes without names (its children too).
pub fn to_flatbuffer(field: &Field, named: bool) -> Result<fb::Field> {
    let unsupported = || Error::UnsupportedType {
        column: field.name().clone(),
        data_type: field.data_type().to_string(),
    };
    let int = |bit_width, is_signed| {
        fb::Type::Int(Box::new(fb::Int {
            bit_width,
            is_signed,
        }))
    };
    let float = |precision| fb::Type::FloatingPoint(Box::new(fb::FloatingPoint { precision }));
    let time_unit = |unit: &TimeUnit| match unit {
        TimeUnit::Second => fb::TimeUnit::Second,
        TimeUnit::Millisecond => fb::TimeUnit::Millisecond,
        TimeUnit::Microsecond => fb::TimeUnit::Microsecond,
        TimeUnit::Nanosecond => fb::TimeUnit::Nanosecond,
    };
    let mut children = Vec::new();
    let type_ = match field.data_type() {
        DataType::Boolean => fb::Type::Bool(Box::default()),
        DataType::Int8 => int(8, true),
        DataType::Int16 => int(16, true),
        DataType::Int32 => int(32, true),
        DataType::Int64 => int(64, true),
        DataType::UInt8 => int(8, false),
        DataType::UInt16 => int(16, false),
        DataType::UInt32 => int(32, false),
        DataType::UInt64 => int(64, false),
        DataType::Float16 => float(fb::Precision::Half),
        DataType::Float32 => float(fb::Precision::Single),
        DataType::Float64 => float(fb::Precision::Double),
        DataType::Utf8 => fb::Type::Utf8(Box::default()),
        DataType::Binary => fb::Type::Binary(Box::default()),
        DataType::Date32 => fb::Type::Date(Box::new(fb::Date {
            unit: fb::DateUnit::Day,
        })),
        DataType::Timestamp(unit, None) => fb::Type::Timestamp(Box::new(fb::Timestamp {
            unit: time_unit(unit),
            timezone: None,
        })),
        DataType::Decimal128(precision, scale) => fb::Type::Decimal(Box::new(fb::Decimal {
            precision: i32::from(*precision),
            scale: i32::from(*scale),
            bit_width: 128,
        })),
        DataType::List(item) => {
            children.push(to_flatbuffer(item, named)?);
            fb::Type::List(Box::default())
        }
        DataType::FixedSizeList(item, size) => {
            children.push(to_flatbuffer(item, named)?);
            fb::Type::FixedSizeList(Box::new(fb::FixedSizeList { list_size: *size }))
        }
        DataType::Struct(fields) => {
            for child in fields {
                children.push(to_flatbuffer(child, named)?);
            }
            fb::Type::Struct(Box::default())
        }
        DataType::Map(entries, sorted) => {
            // The SDK tags the `entries` child with the Map type too.
            let mut entries = to_flatbuffer(entries, named)?;
            entries.type_ = Some(fb::Type::Map(Box::new(fb::Map {
                keys_sorted: *sorted,
            })));
            children.push(entries);
            fb::Type::Map(Box::new(fb::Map {
                keys_sorted: *sorted,
            }))
        }
        _ => return Err(unsupported()),
    };
    Ok(fb::Field {
        name: named.then(|| field.name().clone()),
        nullable: field.is_nullable(),
        type_: Some(type_),
        dictionary: None,
        children: (!children.is_empty()).then_some(children),
        custom_metadata: None,
    })
}

/// Decodes a field of a query body back into Arrow (the inverse of [`to_flatbuffer`]).
pub fn from_flatbuffer(field: &fb::Field) -> Result<Field> {
    let name = field.name.clone().unwrap_or_default();
    let children = field.children.as_deref().unwrap_or_default();
    let malformed = |reason: String| Error::Malformed {
        what: "query schema",
        reason,
    };
    let child = |i: usize| -> Result<Field> {
        children
            .get(i)
            .ok_or_else(|| malformed(format!("field {name:?} lacks child {i}")))
            .and_then(from_flatbuffer)
    };
    let time_unit = |unit: fb::TimeUnit| match unit {
        fb::TimeUnit::Second => TimeUnit::Second,
        fb::TimeUnit::Millisecond => TimeUnit::Millisecond,
        fb::TimeUnit::Microsecond => TimeUnit::Microsecond,
        fb::TimeUnit::Nanosecond => TimeUnit::Nanosecond,
    };
    let data_type = match field.type_.as_ref() {
        Some(fb::Type::Bool(_)) => DataType::Boolean,
        Some(fb::Type::Int(int)) => match (int.bit_width, int.is_signed) {
            (8, true) => DataType::Int8,
            (16, true) => DataType::Int16,
            (32, true) => DataType::Int32,
            (64, true) => DataType::Int64,
            (8, false) => DataType::UInt8,
            (16, false) => DataType::UInt16,
            (32, false) => DataType::UInt32,
            (64, false) => DataType::UInt64,
            (bits, _) => return Err(malformed(format!("{bits}-bit integer {name:?}"))),
        },
        Some(fb::Type::FloatingPoint(float)) => match float.precision {
            fb::Precision::Half => DataType::Float16,
            fb::Precision::Single => DataType::Float32,
            fb::Precision::Double => DataType::Float64,
        },
        Some(fb::Type::Utf8(_)) => DataType::Utf8,
        Some(fb::Type::Binary(_)) => DataType::Binary,
        Some(fb::Type::Date(date)) if date.unit == fb::DateUnit::Day => DataType::Date32,
        Some(fb::Type::Timestamp(ts)) if ts.timezone.is_none() => {
            DataType::Timestamp(time_unit(ts.unit), None)
        }
        Some(fb::Type::Decimal(d)) if d.bit_width == 128 => {
            let precision = u8::try_from(d.precision).map_err(|_| malformed("precision".into()))?;
            let scale = i8::try_from(d.scale).map_err(|_| malformed("scale".into()))?;
            DataType::Decimal128(precision, scale)
        }
        Some(fb::Type::List(_)) => DataType::List(Arc::new(child(0)?)),
        Some(fb::Type::FixedSizeList(list)) => {
            DataType::FixedSizeList(Arc::new(child(0)?), list.list_size)
        }
        Some(fb::Type::Struct(_)) => DataType::Struct(Fields::from(
            (0..children.len()).map(child).collect::<Result<Vec<_>>>()?,
        )),
        // The SDK tags a map's `entries` child with the Map type; it is the key/value struct.
        Some(fb::Type::Map(_)) if name == "entries" => {
            DataType::Struct(Fields::from(vec![child(0)?, child(1)?]))
        }
        Some(fb::Type::Map(map)) => {
            let entries = child(0)?;
            let entries = Field::new(
                entries.name(),
                entries.data_type().clone(),
                entries.is_nullable(),
            );
            DataType::Map(Arc::new(entries), map.keys_sorted)
        }
        other => {
            return Err(Error::UnsupportedType {
                column: name,
                data_type: format!("{other:?}"),
            })
        }
    };
    Ok(Field::new(name, data_type, field.nullable))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_types_carry_no_names() {
        let field = Field::new_list("points", Field::new("item", DataType::Int64, true), true);
        let encoded = to_flatbuffer(&field, false).unwrap();
        assert_eq!(encoded.name, None);
        assert_eq!(encoded.children.unwrap()[0].name, None);
    }

    #[test]
    fn unsupported_types_are_named() {
        let field = Field::new("u", DataType::LargeUtf8, true);
        let err = to_flatbuffer(&field, true).unwrap_err();
        assert!(err.to_string().contains("\"u\""), "{err}");
    }
}
