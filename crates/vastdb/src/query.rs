//! The body of a `GET ?data` query: a `Relation{Source}` flatbuffer holding the queried
//! columns' schema, a filter and the projection, encoded as the SDK encodes it (and decoded,
//! for the emulator and for tests against captured SDK bodies).
//!
//! A filter is a conjunction of groups; each group is a disjunction of conditions on one
//! column, which is all the protocol carries: `(a == 1 | a == 2) & (b < 5)`.

use std::sync::Arc;

use arrow_schema::{DataType, Field, Schema, SchemaRef};
use bytes::Bytes;

use crate::error::{Error, Result};
use crate::fbs::{arrow as fb, ir};
use crate::schema::{children, column_node, column_of_node, leaf_nodes, to_flatbuffer};

/// A literal in a condition. Integers are carried exactly (`i128` holds every `u64` and
/// `i64`); the column's type decides the literal's wire type.
#[derive(Clone, Debug, PartialEq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// An integer of any width and sign.
    Int(i128),
    /// A floating-point number.
    Float(f64),
    /// A UTF-8 string.
    Str(String),
}

impl std::fmt::Display for Value {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Value::Bool(v) => write!(f, "{v}"),
            Value::Int(v) => write!(f, "{v}"),
            Value::Float(v) => write!(f, "{v}"),
            Value::Str(v) => write!(f, "{v:?}"),
        }
    }
}

macro_rules! int_value {
    ($($t:ty),*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::Int(i128::from(v))
            }
        }
    )*};
}
int_value!(i8, i16, i32, i64, u8, u16, u32, u64);

impl From<f64> for Value {
    fn from(v: f64) -> Self {
        Value::Float(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Value::Str(v.to_owned())
    }
}

/// A comparison operator, named on the wire as Arrow compute names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Op {
    /// `==` (`equal`)
    Eq,
    /// `!=` (`not_equal`)
    Ne,
    /// `<` (`less`)
    Lt,
    /// `<=` (`less_equal`)
    Le,
    /// `>` (`greater`)
    Gt,
    /// `>=` (`greater_equal`)
    Ge,
}

impl Op {
    const ALL: [Op; 6] = [Op::Eq, Op::Ne, Op::Lt, Op::Le, Op::Gt, Op::Ge];

    /// The function name on the wire.
    pub fn name(self) -> &'static str {
        match self {
            Op::Eq => "equal",
            Op::Ne => "not_equal",
            Op::Lt => "less",
            Op::Le => "less_equal",
            Op::Gt => "greater",
            Op::Ge => "greater_equal",
        }
    }

    fn from_name(name: &str) -> Option<Op> {
        Op::ALL.into_iter().find(|op| op.name() == name)
    }
}

/// One condition on a column.
#[derive(Clone, Debug, PartialEq)]
pub enum Condition {
    /// `column <op> value`.
    Compare(Op, Value),
    /// `low <= column <= high` (sent as `and(greater_equal, less_equal)`).
    Between(Value, Value),
    /// The value is null.
    IsNull,
    /// The value is not null.
    IsValid,
}

impl Condition {
    /// `column == value`.
    pub fn eq(value: impl Into<Value>) -> Self {
        Condition::Compare(Op::Eq, value.into())
    }

    /// `column <op> value`.
    pub fn compare(op: Op, value: impl Into<Value>) -> Self {
        Condition::Compare(op, value.into())
    }

    /// `low <= column <= high`.
    pub fn between(low: impl Into<Value>, high: impl Into<Value>) -> Self {
        Condition::Between(low.into(), high.into())
    }
}

/// A group of the filter: the column matches any of the conditions.
#[derive(Clone, Debug, PartialEq)]
pub struct AnyOf {
    /// The top-level column the conditions are on.
    pub column: String,
    /// The conditions, OR-ed.
    pub conditions: Vec<Condition>,
}

/// A filter: every group must hold. The empty filter selects every row.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Filter {
    /// The groups, AND-ed.
    pub groups: Vec<AnyOf>,
}

impl Filter {
    /// The filter that selects every row.
    pub fn all() -> Self {
        Self::default()
    }

    /// Adds the group "`column` matches any of `conditions`" (an `isin` is a group of `eq`s).
    pub fn and_any(
        mut self,
        column: &str,
        conditions: impl IntoIterator<Item = Condition>,
    ) -> Self {
        self.groups.push(AnyOf {
            column: column.to_owned(),
            conditions: conditions.into_iter().collect(),
        });
        self
    }

    /// Adds the group "`column` matches `condition`".
    pub fn and(self, column: &str, condition: Condition) -> Self {
        self.and_any(column, [condition])
    }
}

/// An encoded query body and the schema its reply decodes to.
#[derive(Clone, Debug)]
pub struct EncodedQuery {
    /// The `Relation` flatbuffer, the body of `GET ?data`.
    pub body: Bytes,
    /// The projected columns, in order, with the table's types.
    pub response_schema: SchemaRef,
}

/// Encodes `SELECT columns FROM table WHERE filter` against the table's schema (as listed by
/// `?column`). The queried schema is the projected columns in order, then the columns only
/// the filter uses; the projection lists the leaves of the projected columns.
pub fn encode(table: &Schema, columns: &[&str], filter: &Filter) -> Result<EncodedQuery> {
    encode_query(table, columns, filter, false)
}

/// Like [`encode`], with each row's id appended as a last column `$row_id` (uint64), as the
/// SDK's `select(internal_row_id=True)` asks for it.
pub fn encode_with_row_id(
    table: &Schema,
    columns: &[&str],
    filter: &Filter,
) -> Result<EncodedQuery> {
    encode_query(table, columns, filter, true)
}

/// The name of the row-id column.
pub const ROW_ID: &str = "$row_id";

fn encode_query(
    table: &Schema,
    columns: &[&str],
    filter: &Filter,
    row_id: bool,
) -> Result<EncodedQuery> {
    let lookup = |name: &str| -> Result<Arc<Field>> {
        table
            .field_with_name(name)
            .map(|f| Arc::new(f.clone()))
            .map_err(|_| Error::UnknownColumn(name.to_owned()))
    };
    let mut queried: Vec<Arc<Field>> = columns
        .iter()
        .map(|name| lookup(name))
        .collect::<Result<_>>()?;
    if row_id {
        queried.push(Arc::new(Field::new(ROW_ID, DataType::UInt64, true)));
    }
    let projected = queried.len();
    let response_schema = Arc::new(Schema::new(queried.clone()));
    for group in &filter.groups {
        if !queried.iter().any(|f| f.name() == &group.column) {
            queried.push(lookup(&group.column)?);
        }
    }
    let projection: Vec<ir::FieldIndex> = (0..projected)
        .flat_map(|column| leaf_nodes(&queried, column))
        .map(|position| ir::FieldIndex { position })
        .collect();
    let mut groups = Vec::with_capacity(filter.groups.len());
    for group in &filter.groups {
        let column = queried
            .iter()
            .position(|f| f.name() == &group.column)
            .expect("every filter column was added to the queried schema");
        let field = &queried[column];
        if !children(field.data_type()).is_empty() {
            return Err(Error::UnsupportedType {
                column: field.name().clone(),
                data_type: format!("{} (filters take scalar columns)", field.data_type()),
            });
        }
        let node = column_node(&queried, column);
        let members = group
            .conditions
            .iter()
            .map(|condition| encode_condition(node, field, condition))
            .collect::<Result<Vec<_>>>()?;
        groups.push(call("or", members));
    }
    let fields = queried
        .iter()
        .map(|f| to_flatbuffer(f, true))
        .collect::<Result<Vec<_>>>()?;
    let relation = ir::Relation {
        impl_: Some(ir::RelationImpl::Source(Box::new(ir::Source {
            id: None,
            name: Some(String::new()),
            filter: Some(Box::new(call("and", groups))),
            schema: Some(Box::new(fb::Schema {
                endianness: fb::Endianness::Little,
                fields: Some(fields),
                custom_metadata: None,
                features: None,
            })),
            projection: Some(projection),
        }))),
    };
    let mut builder = planus::Builder::new();
    Ok(EncodedQuery {
        body: Bytes::copy_from_slice(builder.finish(&relation, None)),
        response_schema,
    })
}

fn call(name: &str, arguments: Vec<ir::Expression>) -> ir::Expression {
    ir::Expression {
        impl_: Some(ir::ExpressionImpl::Call(Box::new(ir::Call {
            name: Some(name.to_owned()),
            arguments: Some(arguments),
            orderings: None,
        }))),
    }
}

fn field_ref(node: u32) -> ir::Expression {
    ir::Expression {
        impl_: Some(ir::ExpressionImpl::FieldRef(Box::new(ir::FieldRef {
            ref_: Some(ir::Deref::FieldIndex(Box::new(ir::FieldIndex {
                position: node,
            }))),
            relation_index: 0,
        }))),
    }
}

fn encode_condition(node: u32, field: &Field, condition: &Condition) -> Result<ir::Expression> {
    Ok(match condition {
        Condition::Compare(op, value) => call(
            op.name(),
            vec![field_ref(node), encode_literal(field, value)?],
        ),
        Condition::Between(low, high) => call(
            "and",
            vec![
                call(
                    Op::Ge.name(),
                    vec![field_ref(node), encode_literal(field, low)?],
                ),
                call(
                    Op::Le.name(),
                    vec![field_ref(node), encode_literal(field, high)?],
                ),
            ],
        ),
        Condition::IsNull => call("is_null", vec![field_ref(node)]),
        Condition::IsValid => call("is_valid", vec![field_ref(node)]),
    })
}

fn encode_literal(field: &Field, value: &Value) -> Result<ir::Expression> {
    use ir::LiteralImpl as L;
    let mismatch = || Error::LiteralType {
        column: field.name().clone(),
        data_type: field.data_type().to_string(),
        literal: value.to_string(),
    };
    macro_rules! int {
        ($variant:ident, $table:ident, $t:ty) => {{
            let Value::Int(v) = value else {
                return Err(mismatch());
            };
            let value = <$t>::try_from(*v).map_err(|_| mismatch())?;
            L::$variant(Box::new(ir::$table { value }))
        }};
    }
    let impl_ = match (field.data_type(), value) {
        (DataType::Int8, _) => int!(Int8Literal, Int8Literal, i8),
        (DataType::Int16, _) => int!(Int16Literal, Int16Literal, i16),
        (DataType::Int32, _) => int!(Int32Literal, Int32Literal, i32),
        (DataType::Int64, _) => int!(Int64Literal, Int64Literal, i64),
        (DataType::UInt8, _) => int!(UInt8Literal, UInt8Literal, u8),
        (DataType::UInt16, _) => int!(UInt16Literal, UInt16Literal, u16),
        (DataType::UInt32, _) => int!(UInt32Literal, UInt32Literal, u32),
        (DataType::UInt64, _) => int!(UInt64Literal, UInt64Literal, u64),
        (DataType::Float32, Value::Float(v)) => {
            L::Float32Literal(Box::new(ir::Float32Literal { value: *v as f32 }))
        }
        (DataType::Float64, Value::Float(v)) => {
            L::Float64Literal(Box::new(ir::Float64Literal { value: *v }))
        }
        (DataType::Utf8, Value::Str(v)) => L::StringLiteral(Box::new(ir::StringLiteral {
            value: Some(v.clone()),
        })),
        (DataType::Boolean, Value::Bool(v)) => {
            L::BooleanLiteral(Box::new(ir::BooleanLiteral { value: *v }))
        }
        _ => return Err(mismatch()),
    };
    Ok(ir::Expression {
        impl_: Some(ir::ExpressionImpl::Literal(Box::new(ir::Literal {
            impl_: Some(impl_),
            type_: Some(Box::new(to_flatbuffer(field, false)?)),
        }))),
    })
}

/// A query body decoded: the queried fields, the projected leaves and the filter, with
/// columns named by their place in `fields`.
#[derive(Clone, Debug, PartialEq)]
pub struct DecodedQuery {
    /// The queried schema (projected columns, then filter-only ones).
    pub fields: Vec<Arc<Field>>,
    /// Leaf node numbers to return, in order.
    pub projection: Vec<u32>,
    /// The filter's groups; each names its column by index into `fields`.
    pub groups: Vec<(usize, Vec<Condition>)>,
}

/// Decodes a `GET ?data` body.
pub fn decode(body: &[u8]) -> Result<DecodedQuery> {
    let malformed = |reason: String| Error::Malformed {
        what: "query body",
        reason,
    };
    let relation = <ir::RelationRef as planus::ReadAsRoot>::read_as_root(body)
        .map_err(|e| malformed(e.to_string()))?;
    let relation = ir::Relation::try_from(relation).map_err(|e| malformed(e.to_string()))?;
    let Some(ir::RelationImpl::Source(source)) = relation.impl_ else {
        return Err(malformed("the relation is not a Source".into()));
    };
    let fields = source
        .schema
        .and_then(|s| s.fields)
        .unwrap_or_default()
        .iter()
        .map(|f| crate::schema::from_flatbuffer(f).map(Arc::new))
        .collect::<Result<Vec<_>>>()?;
    let projection = source
        .projection
        .unwrap_or_default()
        .iter()
        .map(|f| f.position)
        .collect();
    let mut groups = Vec::new();
    if let Some(filter) = source.filter {
        let (name, arguments) =
            as_call(&filter).ok_or_else(|| malformed("filter is not a call".into()))?;
        if name != "and" {
            return Err(malformed(format!("filter is {name:?}, not \"and\"")));
        }
        for group in arguments {
            let members = match as_call(group) {
                Some(("or", members)) => members,
                _ => return Err(malformed("a filter group is not an \"or\" call".into())),
            };
            let mut column = None;
            let mut conditions = Vec::new();
            for member in members {
                let (node, condition) = decode_condition(member)?;
                let member_column = column_of_node(&fields, node)
                    .ok_or_else(|| malformed(format!("field index {node} out of range")))?;
                if *column.get_or_insert(member_column) != member_column {
                    return Err(malformed("an \"or\" group spans two columns".into()));
                }
                conditions.push(condition);
            }
            let column = column.ok_or_else(|| malformed("an empty \"or\" group".into()))?;
            groups.push((column, conditions));
        }
    }
    Ok(DecodedQuery {
        fields,
        projection,
        groups,
    })
}

fn as_call(expression: &ir::Expression) -> Option<(&str, &[ir::Expression])> {
    match &expression.impl_ {
        Some(ir::ExpressionImpl::Call(call)) => Some((
            call.name.as_deref().unwrap_or_default(),
            call.arguments.as_deref().unwrap_or_default(),
        )),
        _ => None,
    }
}

fn decode_condition(member: &ir::Expression) -> Result<(u32, Condition)> {
    let malformed = |reason: String| Error::Malformed {
        what: "query filter",
        reason,
    };
    let (name, arguments) =
        as_call(member).ok_or_else(|| malformed("a condition is not a call".into()))?;
    let node_of = |e: &ir::Expression| match &e.impl_ {
        Some(ir::ExpressionImpl::FieldRef(r)) => match &r.ref_ {
            Some(ir::Deref::FieldIndex(index)) => Some(index.position),
            _ => None,
        },
        _ => None,
    };
    match (name, arguments) {
        ("is_null" | "is_valid", [field]) => {
            let node = node_of(field).ok_or_else(|| malformed(format!("{name} of no field")))?;
            let condition = if name == "is_null" {
                Condition::IsNull
            } else {
                Condition::IsValid
            };
            Ok((node, condition))
        }
        ("and", [low, high]) => {
            let (node, low) = decode_condition(low)?;
            let (high_node, high) = decode_condition(high)?;
            match (low, high) {
                (Condition::Compare(Op::Ge, low), Condition::Compare(Op::Le, high))
                    if node == high_node =>
                {
                    Ok((node, Condition::Between(low, high)))
                }
                _ => Err(malformed(
                    "an \"and\" inside a group that is not a between".into(),
                )),
            }
        }
        (name, [field, literal]) => {
            let op = Op::from_name(name)
                .ok_or_else(|| malformed(format!("unsupported function {name:?}")))?;
            let node = node_of(field).ok_or_else(|| malformed(format!("{name} of no field")))?;
            Ok((node, Condition::Compare(op, decode_literal(literal)?)))
        }
        (name, arguments) => Err(malformed(format!(
            "{name:?} with {} arguments",
            arguments.len()
        ))),
    }
}

fn decode_literal(expression: &ir::Expression) -> Result<Value> {
    use ir::LiteralImpl as L;
    let unsupported = |what: String| Error::UnsupportedType {
        column: "literal".into(),
        data_type: what,
    };
    let Some(ir::ExpressionImpl::Literal(literal)) = &expression.impl_ else {
        return Err(Error::Malformed {
            what: "query filter",
            reason: "a comparison's second argument is not a literal".into(),
        });
    };
    Ok(match &literal.impl_ {
        Some(L::BooleanLiteral(v)) => Value::Bool(v.value),
        Some(L::Int8Literal(v)) => Value::Int(v.value.into()),
        Some(L::Int16Literal(v)) => Value::Int(v.value.into()),
        Some(L::Int32Literal(v)) => Value::Int(v.value.into()),
        Some(L::Int64Literal(v)) => Value::Int(v.value.into()),
        Some(L::UInt8Literal(v)) => Value::Int(v.value.into()),
        Some(L::UInt16Literal(v)) => Value::Int(v.value.into()),
        Some(L::UInt32Literal(v)) => Value::Int(v.value.into()),
        Some(L::UInt64Literal(v)) => Value::Int(v.value.into()),
        Some(L::Float32Literal(v)) => Value::Float(v.value.into()),
        Some(L::Float64Literal(v)) => Value::Float(v.value),
        Some(L::StringLiteral(v)) => Value::Str(v.value.clone().unwrap_or_default()),
        other => return Err(unsupported(format!("{other:?}"))),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn points_table() -> Schema {
        Schema::new(vec![
            Field::new("label", DataType::UInt64, true),
            Field::new_list("points", Field::new("item", DataType::Int64, true), true),
            Field::new("name", DataType::Utf8, true),
        ])
    }

    #[test]
    fn filter_only_columns_are_queried_but_not_projected() {
        let filter = Filter::all().and("label", Condition::eq(42u64));
        let query = encode(&points_table(), &["points"], &filter).unwrap();
        assert_eq!(query.response_schema.fields().len(), 1);
        let decoded = decode(&query.body).unwrap();
        let names: Vec<_> = decoded.fields.iter().map(|f| f.name().as_str()).collect();
        assert_eq!(names, ["points", "label"]);
        assert_eq!(decoded.projection, [1]);
        assert_eq!(decoded.groups, [(1, vec![Condition::eq(42u64)])]);
    }

    #[test]
    fn every_condition_survives_encoding() {
        let conditions = vec![
            Condition::eq(u64::MAX),
            Condition::compare(Op::Ne, 0u64),
            Condition::compare(Op::Lt, 1u64 << 53),
            Condition::compare(Op::Le, 7u64),
            Condition::compare(Op::Gt, 8u64),
            Condition::compare(Op::Ge, 9u64),
            Condition::between(10u64, 20u64),
            Condition::IsNull,
            Condition::IsValid,
        ];
        let filter = Filter::all()
            .and_any("label", conditions.clone())
            .and("name", Condition::eq("d"));
        let query = encode(&points_table(), &["label", "points"], &filter).unwrap();
        let decoded = decode(&query.body).unwrap();
        assert_eq!(decoded.projection, [0, 2]);
        assert_eq!(
            decoded.groups,
            [(0, conditions), (2, vec![Condition::eq("d")])]
        );
    }

    #[test]
    fn literals_that_do_not_fit_the_column_are_refused() {
        let table = points_table();
        for (column, value) in [
            ("label", Value::Int(-1)),
            ("label", Value::Int(i128::from(u64::MAX) + 1)),
            ("label", Value::Str("42".into())),
            ("name", Value::Int(1)),
        ] {
            let filter = Filter::all().and(column, Condition::Compare(Op::Eq, value));
            assert!(
                matches!(
                    encode(&table, &["label"], &filter),
                    Err(Error::LiteralType { .. })
                ),
                "{filter:?}"
            );
        }
    }

    #[test]
    fn unknown_columns_and_list_filters_are_refused() {
        let table = points_table();
        let err = encode(&table, &["nope"], &Filter::all()).unwrap_err();
        assert!(matches!(err, Error::UnknownColumn(c) if c == "nope"));
        let filter = Filter::all().and("points", Condition::IsNull);
        assert!(matches!(
            encode(&table, &["label"], &filter),
            Err(Error::UnsupportedType { .. })
        ));
    }

    #[test]
    fn count_only_queries_project_nothing() {
        let query = encode(&points_table(), &[], &Filter::all()).unwrap();
        let decoded = decode(&query.body).unwrap();
        assert!(decoded.fields.is_empty() && decoded.projection.is_empty());
        assert!(decoded.groups.is_empty());
    }

    #[test]
    fn garbage_bodies_are_errors() {
        for body in [&b""[..], b"\x08\0\0\0", &[0xff; 64]] {
            assert!(decode(body).is_err());
        }
    }
}
