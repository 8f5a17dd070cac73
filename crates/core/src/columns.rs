//! Integer columns widened to int64, as a table's narrower coordinate columns are served.
//! Written out rather than taken from `arrow-cast`, whose `cast` links every kernel it can
//! dispatch to (0.9 MB of the Worker's code) for these seven conversions.

use std::sync::Arc;

use arrow_array::cast::AsArray;
use arrow_array::types::{
    Int16Type, Int32Type, Int64Type, Int8Type, UInt16Type, UInt32Type, UInt64Type, UInt8Type,
};
use arrow_array::{ArrayRef, ArrowPrimitiveType, PrimitiveArray};
use arrow_schema::DataType;

fn widened<T>(column: &ArrayRef) -> ArrayRef
where
    T: ArrowPrimitiveType,
    T::Native: Into<i64>,
{
    let widened: PrimitiveArray<Int64Type> = column.as_primitive::<T>().unary(Into::into);
    Arc::new(widened)
}

/// `column` as int64, its nulls kept: every integer type widens exactly, but a uint64 above
/// `i64::MAX`, which is refused; any other type is refused.
pub fn int64_column(column: &ArrayRef) -> Result<ArrayRef, String> {
    Ok(match column.data_type() {
        DataType::Int64 => column.clone(),
        DataType::Int32 => widened::<Int32Type>(column),
        DataType::Int16 => widened::<Int16Type>(column),
        DataType::Int8 => widened::<Int8Type>(column),
        DataType::UInt32 => widened::<UInt32Type>(column),
        DataType::UInt16 => widened::<UInt16Type>(column),
        DataType::UInt8 => widened::<UInt8Type>(column),
        DataType::UInt64 => {
            let values = column.as_primitive::<UInt64Type>();
            let widened: PrimitiveArray<Int64Type> = values
                .try_unary(|v| {
                    i64::try_from(v).map_err(|_| {
                        arrow_schema::ArrowError::CastError(format!("{v} is above the int64 range"))
                    })
                })
                .map_err(|e| e.to_string())?;
            Arc::new(widened)
        }
        other => return Err(format!("a {other} column is not an integer column")),
    })
}

#[cfg(test)]
mod tests {
    use arrow_array::{Array, Float32Array, Int16Array, Int64Array, UInt64Array, UInt8Array};

    use super::*;

    fn values(column: &ArrayRef) -> Vec<Option<i64>> {
        let int64 = column.as_any().downcast_ref::<Int64Array>().unwrap();
        int64.iter().collect()
    }

    #[test]
    fn integers_widen_exactly_with_their_nulls() {
        let narrow: ArrayRef = Arc::new(Int16Array::from(vec![Some(i16::MIN), None, Some(7)]));
        assert_eq!(
            values(&int64_column(&narrow).unwrap()),
            [Some(i16::MIN as i64), None, Some(7)]
        );
        let bytes: ArrayRef = Arc::new(UInt8Array::from(vec![255, 0]));
        assert_eq!(values(&int64_column(&bytes).unwrap()), [Some(255), Some(0)]);
        let wide: ArrayRef = Arc::new(UInt64Array::from(vec![i64::MAX as u64, 3]));
        assert_eq!(
            values(&int64_column(&wide).unwrap()),
            [Some(i64::MAX), Some(3)]
        );
        // A slice widens its own rows.
        let sliced = narrow.slice(1, 2);
        assert_eq!(values(&int64_column(&sliced).unwrap()), [None, Some(7)]);
        assert_eq!(int64_column(&sliced).unwrap().len(), 2);
    }

    #[test]
    fn uint64_above_the_range_and_other_types_are_refused() {
        let over: ArrayRef = Arc::new(UInt64Array::from(vec![1, i64::MAX as u64 + 1]));
        let e = int64_column(&over).unwrap_err();
        assert!(e.contains("9223372036854775808"), "{e}");
        let floats: ArrayRef = Arc::new(Float32Array::from(vec![1.0]));
        assert!(int64_column(&floats).unwrap_err().contains("Float32"));
    }
}
