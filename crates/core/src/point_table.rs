//! A table of points as VastDB holds them, in either of its two layouts, and its rows read
//! back as point clouds. The proxy, the Rust client and the wasm client all turn a query's
//! record batches into points here.
//!
//! * `columnar` (what `pocaduck-edge vastdb load` writes): `label uint64` and one integer
//!   column per dim, one row per distinct point, sorted by label then x, y, z;
//! * `pocaduck` (PoCADuck's `dev` layout): `label uint64, block_id string,
//!   points list<int64>` with several rows per label, each a flat run of `N × D` values.
//!   Every row of a label is read and the points are de-duplicated, as `get_points` does.

use arrow_array::cast::AsArray;
use arrow_array::types::{Int32Type, Int64Type};
use arrow_array::{Array, RecordBatch};
use arrow_schema::{DataType, Schema, SchemaRef};

use crate::cloud::row_before;
use crate::error::{Error, Result};
use crate::PointCloud;

/// How the points are laid out in the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `label, x, y, z, …`: one row per distinct point, sorted.
    Columnar,
    /// `label, block_id, points list<int64>`: several rows per label.
    Pocaduck,
}

impl std::fmt::Display for Layout {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Layout::Columnar => "columnar",
            Layout::Pocaduck => "pocaduck",
        })
    }
}

impl std::str::FromStr for Layout {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "columnar" => Ok(Layout::Columnar),
            "pocaduck" => Ok(Layout::Pocaduck),
            other => Err(format!(
                "unknown table layout {other:?} (columnar or pocaduck)"
            )),
        }
    }
}

/// `x, y, z` for three dims, `d0, d1, …` otherwise.
pub fn default_dim_names(dims: usize) -> Vec<String> {
    if dims == 3 {
        ["x", "y", "z"].map(String::from).to_vec()
    } else {
        (0..dims).map(|d| format!("d{d}")).collect()
    }
}

fn is_integer(data_type: &DataType) -> bool {
    data_type.is_integer()
}

/// The coordinate columns of a columnar table: every column but `label`.
pub fn coordinates(schema: &SchemaRef) -> impl Iterator<Item = &arrow_schema::FieldRef> {
    schema.fields().iter().filter(|f| f.name() != "label")
}

/// Checks the table's columns against the layout and the dims.
pub fn check_layout(schema: &SchemaRef, layout: Layout, dims: usize) -> Result<(), String> {
    let label = schema
        .field_with_name("label")
        .map_err(|_| "has no label column".to_owned())?;
    if !matches!(label.data_type(), DataType::UInt64 | DataType::Int64) {
        return Err(format!(
            "has label of type {}, not uint64",
            label.data_type()
        ));
    }
    match layout {
        Layout::Columnar => {
            let coords: Vec<_> = coordinates(schema).collect();
            if coords.len() != dims {
                return Err(format!(
                    "has {} coordinate columns, not {dims}",
                    coords.len()
                ));
            }
            if let Some(f) = coords.iter().find(|f| !is_integer(f.data_type())) {
                return Err(format!("has column {} of type {}", f.name(), f.data_type()));
            }
        }
        Layout::Pocaduck => {
            let points = schema
                .field_with_name("points")
                .map_err(|_| "has no points column (pocaduck layout)".to_owned())?;
            let ok = matches!(points.data_type(), DataType::List(item) if item.data_type() == &DataType::Int64);
            if !ok {
                return Err(format!(
                    "has points of type {}, not list<int64>",
                    points.data_type()
                ));
            }
            schema
                .field_with_name("block_id")
                .map_err(|_| "has no block_id column (pocaduck layout)".to_owned())?;
        }
    }
    Ok(())
}

/// Whether a sequence of pieces is strictly ascending, point after point.
#[derive(Debug)]
pub struct PieceOrder {
    ascending: bool,
    /// The last point so far.
    last: Vec<i64>,
}

impl Default for PieceOrder {
    fn default() -> Self {
        Self {
            ascending: true,
            last: Vec::new(),
        }
    }
}

impl PieceOrder {
    /// Takes in the next piece, `ascending` telling whether it is in itself.
    pub fn follow(&mut self, piece: &PointCloud, ascending: bool) {
        let Some(first) = piece.rows().next() else {
            return;
        };
        self.ascending &= ascending && (self.last.is_empty() || self.last.as_slice() < first);
        let tail = piece.values().len() - piece.dims();
        self.last = piece.values()[tail..].to_vec();
    }
}

impl PieceOrder {
    /// Whether the pieces so far ascend strictly, each after the one before.
    pub fn ascending(&self) -> bool {
        self.ascending
    }
}

/// Interleaves the coordinate columns of a round's batches into `N × D` points, and tells
/// whether those are strictly ascending (for rows of 3, checked in the same pass).
pub fn columnar_cloud(batches: &[RecordBatch], dims: usize) -> Result<(PointCloud, bool)> {
    let n = batches.iter().map(RecordBatch::num_rows).sum::<usize>();
    if dims == 3 {
        let mut ascending = true;
        let mut rows: Vec<i64> = Vec::with_capacity(n * 3);
        let mut before: Option<[i64; 3]> = None;
        for batch in batches.iter().filter(|b| b.num_rows() > 0) {
            // Columns the loader wrote as int32 are widened on the way, not cast first.
            if (0..3).all(|d| {
                batch.column(d).data_type() == &DataType::Int32 && batch.column(d).null_count() == 0
            }) {
                let columns = [0, 1, 2].map(|d| {
                    batch
                        .column(d)
                        .as_primitive::<Int32Type>()
                        .values()
                        .as_ref()
                });
                append_rows(&mut rows, columns, &mut before, &mut ascending);
            } else {
                let columns = int64_columns(batch, dims)?;
                let columns =
                    [0, 1, 2].map(|d| columns[d].as_primitive::<Int64Type>().values().as_ref());
                append_rows(&mut rows, columns, &mut before, &mut ascending);
            }
        }
        let cloud = PointCloud::new(3, rows)?;
        return Ok((cloud, ascending));
    }
    let mut values = vec![0i64; n * dims];
    let mut start = 0;
    for batch in batches {
        let columns = int64_columns(batch, dims)?;
        let end = start + batch.num_rows() * dims;
        for (d, column) in columns.iter().enumerate() {
            let slots = values[start..end].iter_mut().skip(d).step_by(dims);
            let column = column.as_primitive::<Int64Type>().values();
            slots.zip(column.iter()).for_each(|(s, v)| *s = *v);
        }
        start = end;
    }
    let cloud = PointCloud::new(dims, values)?;
    let ascending = cloud.is_sorted_unique();
    Ok((cloud, ascending))
}

/// Appends the rows of three coordinate columns to `rows` (memory never zeroed first), and
/// keeps `ascending` true only while they ascend strictly after `before`, the last row
/// appended: the data is expected to be sorted.
fn append_rows<T: Copy + Ord + Into<i64>>(
    rows: &mut Vec<i64>,
    [x, y, z]: [&[T]; 3],
    before: &mut Option<[i64; 3]>,
    ascending: &mut bool,
) {
    let row = |i: usize| [x[i].into(), y[i].into(), z[i].into()];
    *ascending =
        *ascending && before.is_none_or(|b| row_before(&b, &row(0))) && columns_ascend([x, y, z]);
    *before = Some(row(x.len() - 1));
    let xyz = x.iter().zip(y).zip(z);
    rows.extend(xyz.flat_map(|((x, y), z)| [(*x).into(), (*y).into(), (*z).into()]));
}

/// Whether the rows of three columns ascend strictly, in one branch-free pass over the
/// columns (which the compiler vectorises).
fn columns_ascend<T: Copy + Ord>([x, y, z]: [&[T]; 3]) -> bool {
    let n = x.len();
    let (y, z) = (&y[..n], &z[..n]);
    (1..n).fold(true, |up, i| {
        let (x0, x1, y0, y1, z0, z1) = (x[i - 1], x[i], y[i - 1], y[i], z[i - 1], z[i]);
        up & ((x0 < x1) | ((x0 == x1) & ((y0 < y1) | ((y0 == y1) & (z0 < z1)))))
    })
}

/// The first `dims` columns of `batch` as int64 without nulls.
fn int64_columns(batch: &RecordBatch, dims: usize) -> Result<Vec<arrow_array::ArrayRef>> {
    (0..dims)
        .map(|d| {
            let column = crate::columns::int64_column(batch.column(d))
                .map_err(|e| Error::Points(format!("coordinate column {d}: {e}")))?;
            if column.null_count() > 0 {
                return Err(Error::Points(format!("coordinate column {d} has nulls")));
            }
            Ok(column)
        })
        .collect()
}

/// The points of a PoCADuck-layout table's rows of one label (the `points` list column
/// first), every row's values joined, de-duplicated and sorted as `get_points` answers.
pub fn pocaduck_cloud(batches: &[RecordBatch], dims: usize) -> Result<PointCloud> {
    // Each batch's rows lie one after another in its list values: they are kept as they
    // are, then joined once into a vector of the right size.
    let mut spans = Vec::with_capacity(batches.len());
    for batch in batches {
        let lists = batch.column(0).as_list_opt::<i32>().ok_or_else(|| {
            Error::Points(format!("points arrived as {}", batch.column(0).data_type()))
        })?;
        for row in lists.offsets().windows(2) {
            let len = (row[1] - row[0]) as usize;
            if len % dims != 0 {
                return Err(Error::Points(format!(
                    "a row holds {len} values, not a multiple of {dims} dims"
                )));
            }
        }
        let offsets = lists.value_offsets();
        let (first, last) = (offsets[0] as usize, offsets[lists.len()] as usize);
        let values = lists
            .values()
            .as_primitive_opt::<Int64Type>()
            .ok_or_else(|| {
                Error::Points(format!("point values arrived as {}", lists.value_type()))
            })?;
        spans.push(values.values().slice(first, last - first));
    }
    let mut values = Vec::with_capacity(spans.iter().map(|s| s.len()).sum());
    for span in &spans {
        values.extend_from_slice(span);
    }
    let mut cloud = PointCloud::new(dims, values)?;
    cloud.sort_unique();
    Ok(cloud)
}

/// The schema metadata key naming the table layout of a reply's columns.
pub const LAYOUT_KEY: &str = "pocaduck_edge:layout";
/// The schema metadata key giving the values per point of a reply's columns.
pub const DIMS_KEY: &str = "pocaduck_edge:dims";

/// `schema` (a query's reply columns) with the table layout and dims in its metadata, so a
/// client that de-frames the reply can make points of its rows ([`described`]).
pub fn describe(schema: &Schema, layout: Layout, dims: usize) -> Schema {
    let mut metadata = schema.metadata().clone();
    metadata.insert(LAYOUT_KEY.to_owned(), layout.to_string());
    metadata.insert(DIMS_KEY.to_owned(), dims.to_string());
    schema.clone().with_metadata(metadata)
}

/// The table layout and dims [`describe`] put in `schema`, checked against its columns.
pub fn described(schema: &SchemaRef) -> Result<(Layout, usize)> {
    let value = |key: &str| {
        schema
            .metadata()
            .get(key)
            .ok_or_else(|| Error::Points(format!("the reply's schema has no {key}")))
    };
    let layout: Layout = value(LAYOUT_KEY)?.parse().map_err(Error::Points)?;
    let dims: usize = value(DIMS_KEY)?
        .parse()
        .ok()
        .filter(|&d| d > 0)
        .ok_or_else(|| Error::Points(format!("{DIMS_KEY} is not a positive integer")))?;
    let fits = match layout {
        Layout::Columnar => {
            schema.fields().len() == dims
                && schema.fields().iter().all(|f| f.data_type().is_integer())
        }
        Layout::Pocaduck => {
            schema.fields().len() == 1
                && matches!(schema.field(0).data_type(), DataType::List(item) if item.data_type() == &DataType::Int64)
        }
    };
    if !fits {
        return Err(Error::Points(format!(
            "the reply's columns do not hold {dims}-dim points of the {layout} layout: {:?}",
            schema
                .fields()
                .iter()
                .map(|f| format!("{}: {}", f.name(), f.data_type()))
                .collect::<Vec<_>>()
        )));
    }
    Ok((layout, dims))
}

/// The columns a query of `label`'s points selects: the coordinates (columnar) or
/// `points` (PoCADuck).
pub fn point_columns(schema: &SchemaRef, layout: Layout) -> Vec<String> {
    match layout {
        Layout::Columnar => coordinates(schema).map(|f| f.name().clone()).collect(),
        Layout::Pocaduck => vec!["points".to_owned()],
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::{ArrowPrimitiveType, Int32Array, Int64Array, PrimitiveArray};
    use arrow_schema::{Field, Schema};
    use std::sync::Arc;

    /// Columns `x, y, z` of type `T` holding `rows`.
    fn xyz_batch<T: ArrowPrimitiveType>(rows: &[[T::Native; 3]]) -> RecordBatch {
        let schema = Arc::new(Schema::new(
            ["x", "y", "z"]
                .map(|n| Field::new(n, T::DATA_TYPE, false))
                .to_vec(),
        ));
        let columns = (0..3)
            .map(|d| {
                Arc::new(PrimitiveArray::<T>::from_iter_values(
                    rows.iter().map(|r| r[d]),
                )) as _
            })
            .collect();
        RecordBatch::try_new(schema, columns).unwrap()
    }

    fn batch(rows: &[[i64; 3]]) -> RecordBatch {
        xyz_batch::<Int64Type>(rows)
    }

    #[test]
    fn columns_are_interleaved_and_their_order_checked_in_the_same_pass() {
        let up = [[0, 0, 1], [0, 1, 0], [1, -5, -5]];
        let (cloud, ascending) =
            columnar_cloud(&[batch(&[]), batch(&up), batch(&[[2, 0, 0]])], 3).unwrap();
        assert_eq!(cloud.values(), &[0, 0, 1, 0, 1, 0, 1, -5, -5, 2, 0, 0]);
        assert!(ascending);
        let cases: [&[&[[i64; 3]]]; 4] = [
            &[&[[0, 0, 1], [0, 0, 0]]],               // down within a batch
            &[&[[0, 0, 1], [0, 0, 1]]],               // a repeated point
            &[&[[0, 0, 1]], &[[0, 0, 0], [5, 5, 5]]], // down across batches
            &[&[[7, 0, 0]], &[[7, 0, 0]]],            // repeated across batches
        ];
        for case in cases {
            let batches: Vec<_> = case.iter().map(|rows| batch(rows)).collect();
            let (cloud, ascending) = columnar_cloud(&batches, 3).unwrap();
            assert_eq!(cloud.len(), case.iter().map(|r| r.len()).sum::<usize>());
            assert!(!ascending, "{case:?}");
        }
        // Int32 columns (as the loader writes them when the values fit) are widened, and
        // the order is checked across batches of either width.
        let narrow = xyz_batch::<Int32Type>;
        let wide = batch(&[[i64::from(i32::MAX) + 1, 0, 0]]);
        let mixed = [narrow(&[[-1, i32::MIN, 3], [i32::MAX, 0, 0]]), wide.clone()];
        let (cloud, ascending) = columnar_cloud(&mixed, 3).unwrap();
        let min = i64::from(i32::MIN);
        let max = i64::from(i32::MAX);
        assert_eq!(cloud.values(), &[-1, min, 3, max, 0, 0, max + 1, 0, 0]);
        assert!(ascending);
        assert!(!columnar_cloud(&[wide, narrow(&[[5, 0, 0]])], 3).unwrap().1);
        assert!(
            !columnar_cloud(&[narrow(&[[5, 0, 0], [5, 0, 0]])], 3)
                .unwrap()
                .1
        );
        // Other dims and narrower integer columns take the general path.
        let schema = Arc::new(Schema::new(vec![
            Field::new("a", DataType::Int32, false),
            Field::new("b", DataType::Int64, false),
        ]));
        let two = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int32Array::from(vec![1, 1, 2])),
                Arc::new(Int64Array::from(vec![5, 6, i64::MIN])),
            ],
        )
        .unwrap();
        let (cloud, ascending) = columnar_cloud(std::slice::from_ref(&two), 2).unwrap();
        assert_eq!(cloud.values(), &[1, 5, 1, 6, 2, i64::MIN]);
        assert!(ascending);
        assert!(!columnar_cloud(&[two.clone(), two], 2).unwrap().1);
    }

    #[test]
    fn order_follows_pieces_across_their_boundaries() {
        let piece = |v: Vec<i64>| PointCloud::new(3, v).unwrap();
        let mut order = PieceOrder::default();
        order.follow(&piece(vec![0, 0, 0, 0, 0, 1]), true);
        order.follow(&piece(vec![]), true);
        order.follow(&piece(vec![0, 0, 2]), true);
        assert!(order.ascending());
        order.follow(&piece(vec![0, 0, 2, 9, 9, 9]), true);
        assert!(!order.ascending(), "a point repeated across pieces");
        let mut order = PieceOrder::default();
        order.follow(&piece(vec![1, 0, 0]), false);
        assert!(!order.ascending(), "a piece out of order in itself");
    }

    /// A PoCADuck-layout batch whose rows hold `rows` (each a flat run of values).
    fn pocaduck_batch(rows: &[&[i64]]) -> RecordBatch {
        use arrow_array::builder::{Int64Builder, ListBuilder};
        let mut lists = ListBuilder::new(Int64Builder::new());
        for row in rows {
            lists.values().append_slice(row);
            lists.append(true);
        }
        RecordBatch::try_from_iter([("points", Arc::new(lists.finish()) as _)]).unwrap()
    }

    #[test]
    fn pocaduck_rows_are_joined_sorted_and_de_duplicated() {
        let batches = [
            pocaduck_batch(&[&[5, 5, 5, 0, 0, 1], &[]]),
            pocaduck_batch(&[&[0, 0, 1, -2, 9, 9]]),
        ];
        let cloud = pocaduck_cloud(&batches, 3).unwrap();
        assert_eq!(cloud.values(), &[-2, 9, 9, 0, 0, 1, 5, 5, 5]);
        let ragged = pocaduck_cloud(&[pocaduck_batch(&[&[1, 2, 3, 4]])], 3).unwrap_err();
        assert!(
            ragged.to_string().contains("not a multiple of 3"),
            "{ragged}"
        );
        let wrong = pocaduck_cloud(&[batch(&[[1, 2, 3]])], 3).unwrap_err();
        assert!(
            wrong.to_string().contains("points arrived as Int64"),
            "{wrong}"
        );
    }

    #[test]
    fn a_described_schema_names_its_layout_and_dims() {
        let columnar = batch(&[]).schema();
        let described_columnar = Arc::new(describe(&columnar, Layout::Columnar, 3));
        assert_eq!(
            described(&described_columnar).unwrap(),
            (Layout::Columnar, 3)
        );
        let pocaduck = pocaduck_batch(&[]).schema();
        let described_pocaduck = Arc::new(describe(&pocaduck, Layout::Pocaduck, 3));
        assert_eq!(
            described(&described_pocaduck).unwrap(),
            (Layout::Pocaduck, 3)
        );
        // Columns that do not fit what the metadata says, or no metadata at all.
        for (schema, why) in [
            (
                describe(&columnar, Layout::Columnar, 2),
                "do not hold 2-dim points",
            ),
            (describe(&columnar, Layout::Pocaduck, 3), "pocaduck layout"),
            (describe(&pocaduck, Layout::Columnar, 1), "columnar layout"),
            ((*columnar).clone(), "has no pocaduck_edge:layout"),
            (
                describe(&columnar, Layout::Columnar, 0),
                "not a positive integer",
            ),
        ] {
            let e = described(&Arc::new(schema)).unwrap_err().to_string();
            assert!(e.contains(why), "{e} (expected {why:?})");
        }
    }
}
