//! Query evaluation: the decoded query body mapped onto a table by column name, the filter
//! evaluated with Arrow's compute kernels, and rows dealt out to splits and sub-splits in
//! blocks, each round resuming at a row id and stopping at the row limit.
//!
//! Block `b` (of `row_groups_per_sub_split × 64Ki` rows) belongs to split `b % num_splits`
//! and to sub-split `(b / num_splits) % num_sub_splits`, so the (split, sub-split) pairs
//! cover the table, are disjoint, and are stable while the table does not change.

use std::sync::Arc;

use arrow_arith::boolean::{and_kleene, is_not_null, is_null, or_kleene};
use arrow_array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int64Array, RecordBatch, RecordBatchOptions,
    Scalar, StringArray, UInt64Array,
};
use arrow_buffer::BooleanBuffer;
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use arrow_select::filter::filter;
use pocaduck_edge_vastdb::query::{Condition, DecodedQuery, Op, Value, ROW_ID};
use pocaduck_edge_vastdb::schema::{children, column_of_node};
use pocaduck_edge_vastdb::INVALID_ROW_ID;

use crate::table::{Bounds, RowIds, Table};

/// Rows per row group, as the protocol's block arithmetic counts them.
const ROW_GROUP: u64 = 65_536;
/// Rows of a stored chunk evaluated at once.
const WINDOW: usize = 65_536;

/// The split, sub-split and paging headers of a `?data` request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Scan {
    /// This split.
    pub split_id: u64,
    /// The number of splits.
    pub num_splits: u64,
    /// Row groups per block.
    pub row_groups_per_sub_split: u64,
    /// Resume row id per sub-split.
    pub starts: Vec<u64>,
    /// Rows per sub-split per reply (`None`: no limit).
    pub limit_rows: Option<u64>,
}

impl Scan {
    /// Reads the headers (`get` returns a header's value).
    pub(crate) fn from_headers<'a>(get: impl Fn(&str) -> Option<&'a str>) -> Result<Self, String> {
        let split = get("tabular-split").unwrap_or("0,1,8");
        let parts: Vec<u64> = split
            .split(',')
            .map(|p| p.trim().parse::<u64>())
            .collect::<Result<_, _>>()
            .map_err(|_| format!("bad tabular-split {split:?}"))?;
        let [split_id, num_splits, row_groups_per_sub_split] = parts[..] else {
            return Err(format!("bad tabular-split {split:?}"));
        };
        if num_splits == 0 || split_id >= num_splits || row_groups_per_sub_split == 0 {
            return Err(format!("bad tabular-split {split:?}"));
        }
        let sub_splits: usize = get("tabular-num-of-subsplits")
            .unwrap_or("1")
            .parse()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or("bad tabular-num-of-subsplits")?;
        let mut starts = Vec::with_capacity(sub_splits);
        for i in 0..sub_splits {
            let start = match get(&format!("tabular-start-row-id-{i}")) {
                None => 0,
                Some(value) => {
                    let (index, row) = value
                        .split_once(',')
                        .ok_or_else(|| format!("bad tabular-start-row-id-{i}"))?;
                    if index.trim() != i.to_string() {
                        return Err(format!("tabular-start-row-id-{i} names sub-split {index}"));
                    }
                    row.trim()
                        .parse::<u64>()
                        .map_err(|_| format!("bad tabular-start-row-id-{i}"))?
                }
            };
            starts.push(start);
        }
        let limit_rows = match get("tabular-limit-rows") {
            None => None,
            Some(v) => {
                Some(v.parse::<u64>().map_err(|_| "bad tabular-limit-rows")?).filter(|&n| n > 0)
            }
        };
        Ok(Self {
            split_id,
            num_splits,
            row_groups_per_sub_split,
            starts,
            limit_rows,
        })
    }
}

enum Output {
    Column(usize),
    RowId,
}

/// A query bound to a table.
pub(crate) struct Plan {
    outputs: Vec<Output>,
    /// The reply's columns.
    pub schema: SchemaRef,
    /// Per group: the table column (or `None` for `$row_id`) and its conditions.
    groups: Vec<(Option<usize>, Vec<Condition>)>,
}

/// Binds a decoded query to `table`: columns by name, `$row_id` as the row ids.
pub(crate) fn plan(table: &Table, query: &DecodedQuery) -> Result<Plan, String> {
    let bind = |field: &Field| -> Result<Option<usize>, String> {
        if field.name() == ROW_ID {
            return Ok(None);
        }
        table
            .schema
            .index_of(field.name())
            .map(Some)
            .map_err(|_| format!("no column {:?}", field.name()))
    };
    let mut outputs = Vec::new();
    let mut fields = Vec::new();
    for &leaf in &query.projection {
        let column = column_of_node(&query.fields, leaf)
            .ok_or_else(|| format!("projection names node {leaf}, beyond the schema"))?;
        let field = &query.fields[column];
        if children(field.data_type()).len() > 1 {
            return Err(format!("column {:?} has several leaves", field.name()));
        }
        if fields
            .last()
            .is_some_and(|f: &Arc<Field>| f.name() == field.name())
        {
            continue; // another leaf of the same column
        }
        match bind(field)? {
            Some(index) => {
                outputs.push(Output::Column(index));
                fields.push(Arc::new(table.schema.field(index).clone()));
            }
            None => {
                outputs.push(Output::RowId);
                fields.push(Arc::new(Field::new(ROW_ID, DataType::UInt64, true)));
            }
        }
    }
    let groups = query
        .groups
        .iter()
        .map(|(column, conditions)| Ok((bind(&query.fields[*column])?, conditions.clone())))
        .collect::<Result<_, String>>()?;
    Ok(Plan {
        outputs,
        schema: Arc::new(Schema::new(fields)),
        groups,
    })
}

/// One round of a sub-split: the matching rows from `start` on, at most `limit`, as they lie
/// in the table's chunks (one batch per chunk, or per [`WINDOW`] rows of a bigger one; one
/// batch holding the row count when nothing is projected), and the row id to resume at
/// ([`INVALID_ROW_ID`] when the sub-split is exhausted).
pub(crate) fn round(
    table: &Table,
    plan: &Plan,
    scan: &Scan,
    sub_split: usize,
) -> Result<(Vec<RecordBatch>, u64), String> {
    let block = scan.row_groups_per_sub_split * ROW_GROUP;
    let sub_splits = scan.starts.len() as u64;
    let total = table.end_row_id();
    let start = scan.starts[sub_split];
    let mut remaining = scan.limit_rows.unwrap_or(u64::MAX);
    let mut pieces: Vec<RecordBatch> = Vec::new();
    let mut counted = 0usize;
    let mut k = 0u64;
    loop {
        let b = scan.split_id + scan.num_splits * (sub_split as u64 + k * sub_splits);
        k += 1;
        let (block_start, block_end) = (b * block, ((b + 1) * block).min(total));
        if block_start >= total {
            break;
        }
        if block_end <= start {
            continue;
        }
        for (chunk_ids, chunk, bounds) in table.rows(block_start.max(start), block_end) {
            if remaining == 0 {
                return Ok((finish(plan, pieces, counted)?, chunk_ids.get(0)));
            }
            if !could_match(plan, bounds) {
                continue;
            }
            let whole = always_matches(plan, bounds, &chunk);
            // A window at a time, so a round that stops early evaluates little past its
            // last row: paging through a big chunk costs its size once, not once a round.
            for offset in (0..chunk.num_rows()).step_by(WINDOW) {
                let len = WINDOW.min(chunk.num_rows() - offset);
                let ids = chunk_ids.slice(offset, len);
                if remaining == 0 {
                    return Ok((finish(plan, pieces, counted)?, ids.get(0)));
                }
                let rows = chunk.slice(offset, len);
                let mask = if whole {
                    BooleanArray::new(BooleanBuffer::new_set(rows.num_rows()), None)
                } else {
                    evaluate(plan, &ids, &rows)?
                };
                let matches = mask.true_count() as u64;
                if matches == 0 {
                    continue;
                }
                let (mask, rows, done) = if matches > remaining {
                    let cut = mask
                        .values()
                        .set_indices()
                        .nth(remaining as usize - 1)
                        .expect("more matches than remaining")
                        + 1;
                    (
                        mask.slice(0, cut),
                        rows.slice(0, cut),
                        Some(ids.get(cut - 1) + 1),
                    )
                } else {
                    (mask, rows, None)
                };
                let taken = project(plan, &ids, &rows, &mask)?;
                remaining -= taken.num_rows() as u64;
                counted += taken.num_rows();
                pieces.push(taken);
                if let Some(next) = done {
                    return Ok((finish(plan, pieces, counted)?, next));
                }
            }
        }
        if remaining == 0 {
            let next = block_end;
            let next = if next >= total { INVALID_ROW_ID } else { next };
            return Ok((finish(plan, pieces, counted)?, next));
        }
    }
    Ok((finish(plan, pieces, counted)?, INVALID_ROW_ID))
}

/// The round's batches: the pieces as they are, or for a count-only query one batch that
/// carries the row count.
fn finish(plan: &Plan, pieces: Vec<RecordBatch>, rows: usize) -> Result<Vec<RecordBatch>, String> {
    if plan.schema.fields().is_empty() {
        let options = RecordBatchOptions::new().with_row_count(Some(rows));
        return RecordBatch::try_new_with_options(plan.schema.clone(), vec![], &options)
            .map(|batch| vec![batch])
            .map_err(|e| e.to_string());
    }
    Ok(pieces)
}

fn project(
    plan: &Plan,
    ids: &RowIds,
    rows: &RecordBatch,
    mask: &BooleanArray,
) -> Result<RecordBatch, String> {
    let columns = plan
        .outputs
        .iter()
        .map(|output| {
            let column = match output {
                Output::Column(i) => rows.column(*i).clone(),
                Output::RowId => ids.to_array(rows.num_rows()),
            };
            if mask.len() == rows.num_rows() && mask.true_count() == mask.len() {
                return Ok(column);
            }
            filter(&column, mask).map_err(|e| e.to_string())
        })
        .collect::<Result<Vec<_>, _>>()?;
    let options = RecordBatchOptions::new().with_row_count(Some(mask.true_count()));
    RecordBatch::try_new_with_options(plan.schema.clone(), columns, &options)
        .map_err(|e| e.to_string())
}

/// Whether rows within `bounds` could match every group (`false` only when the column
/// ranges rule a group out, so the chunk is skipped unread).
fn could_match(plan: &Plan, bounds: &Bounds) -> bool {
    plan.groups.iter().all(|(column, conditions)| {
        let Some(Some((low, high))) = column.map(|i| bounds[i]) else {
            return true;
        };
        conditions.iter().any(|c| in_range(c, low, high))
    })
}

/// Whether every row of `rows`, whose columns lie within `bounds`, matches every group (so
/// the chunk is taken whole, unevaluated): each group has a condition that holds for all
/// of its column's range, and the column has no nulls.
fn always_matches(plan: &Plan, bounds: &Bounds, rows: &RecordBatch) -> bool {
    plan.groups.iter().all(|(column, conditions)| {
        let Some(i) = *column else {
            return false;
        };
        let Some((low, high)) = bounds[i] else {
            return false;
        };
        rows.column(i).null_count() == 0
            && conditions.iter().any(|c| holds_throughout(c, low, high))
    })
}

/// Whether `condition` holds for every value in `low..=high`.
fn holds_throughout(condition: &Condition, low: i128, high: i128) -> bool {
    match condition {
        Condition::Compare(op, Value::Int(v)) => match op {
            Op::Eq => low == *v && high == *v,
            Op::Ne => *v < low || *v > high,
            Op::Lt => high < *v,
            Op::Le => high <= *v,
            Op::Gt => low > *v,
            Op::Ge => low >= *v,
        },
        Condition::Between(Value::Int(a), Value::Int(b)) => *a <= low && high <= *b,
        Condition::IsValid => true,
        _ => false,
    }
}

/// Whether `condition` could hold for a value in `low..=high`.
fn in_range(condition: &Condition, low: i128, high: i128) -> bool {
    match condition {
        Condition::Compare(op, Value::Int(v)) => match op {
            Op::Eq => low <= *v && *v <= high,
            Op::Ne => !(low == high && low == *v),
            Op::Lt => low < *v,
            Op::Le => low <= *v,
            Op::Gt => high > *v,
            Op::Ge => high >= *v,
        },
        Condition::Between(Value::Int(a), Value::Int(b)) => *a <= high && *b >= low,
        _ => true,
    }
}

/// The rows matching every group, as a mask without nulls.
fn evaluate(plan: &Plan, ids: &RowIds, rows: &RecordBatch) -> Result<BooleanArray, String> {
    let n = rows.num_rows();
    let mut mask: Option<BooleanArray> = None;
    for (column, conditions) in &plan.groups {
        let values = match column {
            Some(i) => rows.column(*i).clone(),
            None => ids.to_array(n),
        };
        let mut any: Option<BooleanArray> = None;
        for condition in conditions {
            let hit = test(&values, condition)?;
            any = Some(match any {
                None => hit,
                Some(a) => or_kleene(&a, &hit).map_err(|e| e.to_string())?,
            });
        }
        // A group with no condition matches nothing.
        let any = any.unwrap_or_else(|| BooleanArray::new(BooleanBuffer::new_unset(n), None));
        mask = Some(match mask {
            None => any,
            Some(m) => and_kleene(&m, &any).map_err(|e| e.to_string())?,
        });
    }
    let mask = mask.unwrap_or_else(|| BooleanArray::new(BooleanBuffer::new_set(n), None));
    // Null (unknown) counts as not matching.
    let values = match mask.nulls() {
        Some(nulls) => mask.values() & nulls.inner(),
        None => mask.values().clone(),
    };
    Ok(BooleanArray::new(values, None))
}

fn test(values: &ArrayRef, condition: &Condition) -> Result<BooleanArray, String> {
    let cmp = |op: Op, value: &Value| -> Result<BooleanArray, String> {
        let literal = Scalar::new(literal(value, values.data_type())?);
        let values = values.as_ref();
        use arrow_ord::cmp;
        match op {
            Op::Eq => cmp::eq(&values, &literal),
            Op::Ne => cmp::neq(&values, &literal),
            Op::Lt => cmp::lt(&values, &literal),
            Op::Le => cmp::lt_eq(&values, &literal),
            Op::Gt => cmp::gt(&values, &literal),
            Op::Ge => cmp::gt_eq(&values, &literal),
        }
        .map_err(|e| e.to_string())
    };
    match condition {
        Condition::Compare(op, value) => cmp(*op, value),
        Condition::Between(low, high) => {
            and_kleene(&cmp(Op::Ge, low)?, &cmp(Op::Le, high)?).map_err(|e| e.to_string())
        }
        Condition::IsNull => is_null(values.as_ref()).map_err(|e| e.to_string()),
        Condition::IsValid => is_not_null(values.as_ref()).map_err(|e| e.to_string()),
    }
}

/// A one-element array of the column's type holding `value`.
fn literal(value: &Value, data_type: &DataType) -> Result<ArrayRef, String> {
    let raw: ArrayRef = match value {
        Value::Int(v) => match (i64::try_from(*v), u64::try_from(*v)) {
            (Ok(v), _) => Arc::new(Int64Array::from(vec![v])),
            (_, Ok(v)) => Arc::new(UInt64Array::from(vec![v])),
            _ => return Err(format!("integer {v} out of range")),
        },
        Value::Float(v) => Arc::new(Float64Array::from(vec![*v])),
        Value::Str(v) => Arc::new(StringArray::from(vec![v.as_str()])),
        Value::Bool(v) => Arc::new(BooleanArray::from(vec![*v])),
    };
    let options = arrow_cast::CastOptions {
        safe: false,
        ..Default::default()
    };
    arrow_cast::cast_with_options(&raw, data_type, &options)
        .map_err(|e| format!("literal {value} for a {data_type} column: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::Chunk;
    use arrow_array::cast::AsArray;
    use arrow_array::types::Int64Type;
    use pocaduck_edge_vastdb::query::{self, Filter};

    fn table() -> Table {
        let schema = Arc::new(Schema::new(vec![
            Field::new("label", DataType::UInt64, false),
            Field::new("x", DataType::Int64, false),
        ]));
        let mut batches = Vec::new();
        let mut first = 0u64;
        for len in [100_000u64, 50_000, 7, 90_000] {
            let labels = UInt64Array::from_iter_values((first..first + len).map(|r| r % 10));
            let xs = Int64Array::from_iter_values((first..first + len).map(|r| r as i64));
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(labels), Arc::new(xs)]).unwrap();
            batches.push(Chunk::new(first, batch));
            first += len;
        }
        Table {
            id: 0,
            schema,
            batches,
        }
    }

    /// Runs every split to completion as the SDK does and returns the `x` values.
    fn run(
        table: &Table,
        filter: &Filter,
        splits: u64,
        sub_splits: usize,
        limit: Option<u64>,
    ) -> Vec<i64> {
        let encoded = query::encode(&table.schema, &["x"], filter).unwrap();
        let bound = plan(table, &query::decode(&encoded.body).unwrap()).unwrap();
        let mut out = Vec::new();
        for split_id in 0..splits {
            let mut scan = Scan {
                split_id,
                num_splits: splits,
                row_groups_per_sub_split: 1,
                starts: vec![0; sub_splits],
                limit_rows: limit,
            };
            for _request in 0..1000 {
                if scan.starts.iter().all(|&s| s == INVALID_ROW_ID) {
                    break;
                }
                let mut next_starts = scan.starts.clone();
                for (i, start) in scan.starts.iter().enumerate() {
                    if *start == INVALID_ROW_ID {
                        continue;
                    }
                    let (batches, next) = round(table, &bound, &scan, i).unwrap();
                    if let Some(limit) = limit {
                        let rows: usize = batches.iter().map(|b| b.num_rows()).sum();
                        assert!(rows as u64 <= limit);
                    }
                    assert!(next > *start, "every round moves forward");
                    for batch in &batches {
                        out.extend(batch.column(0).as_primitive::<Int64Type>().values().iter());
                    }
                    next_starts[i] = next;
                }
                scan.starts = next_starts;
            }
            assert!(scan.starts.iter().all(|&s| s == INVALID_ROW_ID), "bounded");
        }
        out.sort_unstable();
        out
    }

    #[test]
    fn splits_and_sub_splits_cover_every_row_once() {
        let table = table();
        let all: Vec<i64> = (0..240_007).collect();
        for (splits, sub_splits, limit) in [(1, 1, None), (1, 4, Some(7_000)), (3, 2, Some(65_536))]
        {
            assert_eq!(
                run(&table, &Filter::all(), splits, sub_splits, limit),
                all,
                "{splits} {sub_splits} {limit:?}"
            );
        }
    }

    #[test]
    fn chunks_skipped_by_their_bounds_lose_no_match() {
        // `x` is the row id, so most chunks lie wholly outside each range and are skipped.
        let table = table();
        type Case = (Condition, fn(i64) -> bool);
        let cases: [Case; 7] = [
            (Condition::eq(150_003i64), |x| x == 150_003),
            (Condition::Compare(Op::Ne, Value::Int(5)), |x| x != 5),
            (Condition::Compare(Op::Lt, Value::Int(100_001)), |x| {
                x < 100_001
            }),
            (Condition::Compare(Op::Le, Value::Int(0)), |x| x <= 0),
            (Condition::Compare(Op::Gt, Value::Int(240_000)), |x| {
                x > 240_000
            }),
            (Condition::Compare(Op::Ge, Value::Int(150_000)), |x| {
                x >= 150_000
            }),
            (Condition::between(149_990i64, 150_010i64), |x| {
                (149_990..=150_010).contains(&x)
            }),
        ];
        for (condition, keep) in cases {
            let filter = Filter::all().and("x", condition.clone());
            let expected: Vec<i64> = (0..240_007).filter(|&x| keep(x)).collect();
            assert_eq!(
                run(&table, &filter, 1, 2, Some(5_000)),
                expected,
                "{condition:?}"
            );
        }
        let none = Filter::all().and("x", Condition::eq(-1i64));
        assert!(run(&table, &none, 1, 1, None).is_empty());
    }

    #[test]
    fn whole_chunks_are_taken_unevaluated_only_when_every_row_matches() {
        let schema = Arc::new(Schema::new(vec![Field::new("x", DataType::Int64, true)]));
        let chunk = |values: Vec<Option<i64>>| {
            let batch =
                RecordBatch::try_new(schema.clone(), vec![Arc::new(Int64Array::from(values))])
                    .unwrap();
            Chunk::new(0, batch)
        };
        let whole = |chunk: &Chunk, condition: Condition| {
            let table = Table {
                id: 0,
                schema: schema.clone(),
                batches: vec![chunk.clone()],
            };
            let filter = Filter::all().and("x", condition);
            let encoded = query::encode(&schema, &["x"], &filter).unwrap();
            let bound = plan(&table, &query::decode(&encoded.body).unwrap()).unwrap();
            always_matches(&bound, &chunk.bounds, &chunk.batch)
        };
        let sevens = chunk(vec![Some(7), Some(7)]);
        assert!(whole(&sevens, Condition::eq(7i64)));
        assert!(!whole(&sevens, Condition::eq(8i64)));
        let span = chunk(vec![Some(10), Some(15), Some(20)]);
        let int = |op, v| Condition::Compare(op, Value::Int(v));
        for (condition, expected) in [
            (Condition::eq(10i64), false),
            (int(Op::Ne, 9), true),
            (int(Op::Ne, 15), false),
            (int(Op::Lt, 21), true),
            (int(Op::Lt, 20), false),
            (int(Op::Le, 20), true),
            (int(Op::Gt, 9), true),
            (int(Op::Gt, 10), false),
            (int(Op::Ge, 10), true),
            (Condition::between(10i64, 20i64), true),
            (Condition::between(11i64, 20i64), false),
        ] {
            assert_eq!(whole(&span, condition.clone()), expected, "{condition:?}");
        }
        // A null never matches a comparison, so a chunk holding one is evaluated.
        let with_null = chunk(vec![Some(10), None, Some(20)]);
        assert!(!whole(&with_null, int(Op::Ge, 0)));
        assert!(!whole(&with_null, Condition::IsValid));
    }

    #[test]
    fn filters_and_tiny_limits_page_through_matches() {
        let table = table();
        let filter = Filter::all()
            .and("label", Condition::eq(3u64))
            .and("x", Condition::between(100_000i64, 150_010i64));
        let expected: Vec<i64> = (100_000..=150_010).filter(|x| x % 10 == 3).collect();
        assert_eq!(run(&table, &filter, 2, 3, Some(7)), expected);
        assert_eq!(run(&table, &filter, 1, 4, Some(1000)), expected);
    }

    #[test]
    fn bad_scan_headers_are_refused() {
        let cases: [&[(&str, &str)]; 5] = [
            &[("tabular-split", "0,0,8")],
            &[("tabular-split", "2,2,8")],
            &[("tabular-split", "x")],
            &[("tabular-num-of-subsplits", "0")],
            &[
                ("tabular-num-of-subsplits", "2"),
                ("tabular-start-row-id-1", "0,5"),
            ],
        ];
        for headers in cases {
            let get = |name: &str| headers.iter().find(|(k, _)| *k == name).map(|(_, v)| *v);
            assert!(Scan::from_headers(get).is_err(), "{headers:?}");
        }
    }
}
