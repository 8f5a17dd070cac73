//! The row edits of `PUT ?rows` (update) and `DELETE ?rows` (delete) bodies, checked
//! against the table's schema: a record batch whose first column is `$row_id` (uint64, no
//! nulls, no id twice), followed, in an update, by columns of the table by name, cast to
//! the table's types. Edits are sorted by row id.

use std::collections::BTreeSet;

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_array::{Array, ArrayRef, RecordBatch, UInt64Array};
use arrow_schema::{DataType, Schema};
use arrow_select::take::take;
use pocaduck_edge_vastdb::query::ROW_ID;

/// New values for some columns of some rows.
#[derive(Debug, Clone)]
pub(crate) struct Update {
    /// The rows' ids, ascending.
    pub ids: Vec<u64>,
    /// Per updated column: its index in the table and its values, in `ids` order.
    pub columns: Vec<(usize, ArrayRef)>,
}

impl Update {
    /// The update a `PUT ?rows` batch asks of a table with `schema`.
    pub(crate) fn from_batch(schema: &Schema, batch: &RecordBatch) -> Result<Self, String> {
        let (ids, order) = row_ids(batch)?;
        let mut seen = BTreeSet::new();
        let mut columns = Vec::with_capacity(batch.num_columns() - 1);
        for (field, values) in batch.schema().fields().iter().zip(batch.columns()).skip(1) {
            let name = field.name();
            let index = schema
                .index_of(name)
                .map_err(|_| format!("no column {name:?}"))?;
            if !seen.insert(index) {
                return Err(format!("column {name:?} appears twice"));
            }
            let target = schema.field(index).data_type();
            // A value the type cannot hold is refused, not made null.
            let strict = arrow_cast::CastOptions {
                safe: false,
                ..Default::default()
            };
            let values = arrow_cast::cast_with_options(values, target, &strict)
                .map_err(|e| format!("column {name:?} as {target}: {e}"))?;
            let values = take(&values, &order, None).map_err(|e| e.to_string())?;
            columns.push((index, values));
        }
        Ok(Self { ids, columns })
    }
}

/// The ids a `DELETE ?rows` batch names (a lone `$row_id` column), ascending.
pub(crate) fn delete_ids(batch: &RecordBatch) -> Result<Vec<u64>, String> {
    if batch.num_columns() != 1 {
        return Err(format!(
            "a delete carries only {ROW_ID:?}, not {} columns",
            batch.num_columns()
        ));
    }
    Ok(row_ids(batch)?.0)
}

/// The batch's ids, ascending, and the order that sorts its rows so.
fn row_ids(batch: &RecordBatch) -> Result<(Vec<u64>, UInt64Array), String> {
    let schema = batch.schema();
    let Some(field) = schema.fields().first() else {
        return Err(format!(
            "the first column must be {ROW_ID:?}; there is none"
        ));
    };
    if field.name() != ROW_ID {
        return Err(format!(
            "the first column must be {ROW_ID:?}, not {:?}",
            field.name()
        ));
    }
    if field.data_type() != &DataType::UInt64 {
        return Err(format!(
            "{ROW_ID:?} must be uint64, not {}",
            field.data_type()
        ));
    }
    let column = batch.column(0).as_primitive::<UInt64Type>();
    if column.null_count() > 0 {
        return Err(format!("{ROW_ID:?} holds nulls"));
    }
    let mut order: Vec<u64> = (0..column.len() as u64).collect();
    order.sort_by_key(|&i| column.value(i as usize));
    let ids: Vec<u64> = order.iter().map(|&i| column.value(i as usize)).collect();
    if let Some(pair) = ids.windows(2).find(|w| w[0] == w[1]) {
        return Err(format!("row {} appears twice", pair[0]));
    }
    Ok((ids, UInt64Array::from(order)))
}

/// The rows of `update` whose ids pass `keep`, and those that do not.
pub(crate) fn split(update: &Update, keep: impl Fn(u64) -> bool) -> (Update, Update) {
    let (mut yes, mut no) = (Vec::new(), Vec::new());
    for (i, &id) in update.ids.iter().enumerate() {
        if keep(id) {
            yes.push(i as u64);
        } else {
            no.push(i as u64);
        }
    }
    let pick = |rows: Vec<u64>| {
        let rows = UInt64Array::from(rows);
        Update {
            ids: rows
                .values()
                .iter()
                .map(|&i| update.ids[i as usize])
                .collect(),
            columns: update
                .columns
                .iter()
                .map(|(c, values)| {
                    let values = take(values, &rows, None).expect("indices within the column");
                    (*c, values)
                })
                .collect(),
        }
    };
    (pick(yes), pick(no))
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{Int32Array, Int64Array, StringArray};
    use arrow_schema::Field;
    use std::sync::Arc;

    fn table_schema() -> Schema {
        Schema::new(vec![
            Field::new("label", DataType::UInt64, true),
            Field::new("x", DataType::Int64, true),
        ])
    }

    fn batch(columns: Vec<(&str, ArrayRef)>) -> RecordBatch {
        RecordBatch::try_from_iter(columns).unwrap()
    }

    fn ids(values: Vec<Option<u64>>) -> ArrayRef {
        Arc::new(UInt64Array::from(values))
    }

    #[test]
    fn an_update_is_sorted_by_row_id_and_cast_to_the_table() {
        let body = batch(vec![
            (ROW_ID, ids(vec![Some(9), Some(2), Some(5)])),
            ("x", Arc::new(Int32Array::from(vec![90, 20, 50]))),
        ]);
        let update = Update::from_batch(&table_schema(), &body).unwrap();
        assert_eq!(update.ids, vec![2, 5, 9]);
        let (column, values) = &update.columns[0];
        assert_eq!(*column, 1);
        assert_eq!(
            values
                .as_primitive::<arrow_array::types::Int64Type>()
                .values(),
            &[20, 50, 90]
        );
        let (odd, even) = split(&update, |id| id % 2 == 1);
        assert_eq!((odd.ids, even.ids), (vec![5, 9], vec![2]));
        assert_eq!(odd.columns[0].1.len(), 2);
    }

    #[test]
    fn bad_edits_are_refused_naming_the_fault() {
        let schema = table_schema();
        let one = || ids(vec![Some(1)]);
        let cases: Vec<(RecordBatch, &str)> = vec![
            (
                batch(vec![("x", Arc::new(Int64Array::from(vec![1])))]),
                "the first column must be \"$row_id\", not \"x\"",
            ),
            (
                batch(vec![(ROW_ID, Arc::new(Int64Array::from(vec![1])))]),
                "\"$row_id\" must be uint64, not Int64",
            ),
            (
                batch(vec![(ROW_ID, ids(vec![Some(1), None]))]),
                "\"$row_id\" holds nulls",
            ),
            (
                batch(vec![(ROW_ID, ids(vec![Some(3), Some(1), Some(3)]))]),
                "row 3 appears twice",
            ),
            (
                batch(vec![(ROW_ID, one()), ("y", one())]),
                "no column \"y\"",
            ),
            (
                batch(vec![
                    (ROW_ID, one()),
                    ("x", Arc::new(StringArray::from(vec!["seven"]))),
                ]),
                "column \"x\" as Int64: ",
            ),
        ];
        for (body, expected) in cases {
            let err = Update::from_batch(&schema, &body).unwrap_err();
            assert!(err.starts_with(expected), "{err} / {expected}");
        }
        let twice = RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new(ROW_ID, DataType::UInt64, false),
                Field::new("x", DataType::Int64, true),
                Field::new("x", DataType::Int64, true),
            ])),
            vec![
                one(),
                Arc::new(Int64Array::from(vec![1])),
                Arc::new(Int64Array::from(vec![2])),
            ],
        )
        .unwrap();
        assert_eq!(
            Update::from_batch(&schema, &twice).unwrap_err(),
            "column \"x\" appears twice"
        );
        let extra = batch(vec![
            (ROW_ID, one()),
            ("x", Arc::new(Int64Array::from(vec![1]))),
        ]);
        assert_eq!(
            delete_ids(&extra).unwrap_err(),
            "a delete carries only \"$row_id\", not 2 columns"
        );
        let empty = RecordBatch::new_empty(Arc::new(Schema::empty()));
        assert!(delete_ids(&empty).is_err());
        assert_eq!(
            delete_ids(&batch(vec![(ROW_ID, ids(vec![Some(4), Some(2)]))])).unwrap(),
            vec![2, 4]
        );
    }
}
