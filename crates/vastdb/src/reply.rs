//! Replies to the metadata calls: the version probe's `Server` header, listings, table
//! statistics, column lists, insert row ids and S3-style error bodies.

use arrow_array::cast::AsArray;
use arrow_array::types::UInt64Type;
use arrow_ipc::reader::StreamReader;
use arrow_schema::{DataType, Schema};

use crate::error::{Error, Result};
use crate::fbs::tabular;

/// The version in a `Server: vast A.B.C.D` header.
pub fn parse_server_version(server: &str) -> Option<[u32; 4]> {
    let version = server.strip_prefix("vast ")?;
    let mut parts = version.split('.').map(|p| p.parse::<u32>().ok());
    let out = [
        parts.next()??,
        parts.next()??,
        parts.next()??,
        parts.next()??,
    ];
    parts.next().is_none().then_some(out)
}

/// One entry of a schema or table listing.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    /// The child name.
    pub name: String,
    /// Rows, when the listing included statistics.
    pub num_rows: u64,
}

fn malformed(what: &'static str) -> impl Fn(planus::Error) -> Error {
    move |e| Error::Malformed {
        what,
        reason: e.to_string(),
    }
}

fn entries(details: Option<Vec<tabular::ObjectDetails>>) -> Vec<Entry> {
    details
        .unwrap_or_default()
        .into_iter()
        .map(|d| Entry {
            name: d.name.unwrap_or_default(),
            num_rows: d.num_rows,
        })
        .collect()
}

/// The entries of a `ListSchemasResponse`.
pub fn parse_schemas(body: &[u8]) -> Result<Vec<Entry>> {
    let what = "schema listing";
    let root = <tabular::ListSchemasResponseRef as planus::ReadAsRoot>::read_as_root(body)
        .map_err(malformed(what))?;
    let owned = tabular::ListSchemasResponse::try_from(root).map_err(malformed(what))?;
    Ok(entries(owned.schemas))
}

/// The entries of a `ListTablesResponse`.
pub fn parse_tables(body: &[u8]) -> Result<Vec<Entry>> {
    let what = "table listing";
    let root = <tabular::ListTablesResponseRef as planus::ReadAsRoot>::read_as_root(body)
        .map_err(malformed(what))?;
    let owned = tabular::ListTablesResponse::try_from(root).map_err(malformed(what))?;
    Ok(entries(owned.tables))
}

/// The row count of a `GetTableStatsResponse`.
pub fn parse_table_stats(body: &[u8]) -> Result<u64> {
    let what = "table statistics";
    let root = <tabular::GetTableStatsResponseRef as planus::ReadAsRoot>::read_as_root(body)
        .map_err(malformed(what))?;
    let rows = root.num_rows().map_err(malformed(what))?;
    u64::try_from(rows).map_err(|_| Error::Malformed {
        what,
        reason: format!("{rows} rows"),
    })
}

/// The table schema of a `?column` reply (an IPC stream holding at least the schema).
pub fn parse_columns(body: &[u8]) -> Result<Schema> {
    let bad = |reason: String| Error::Malformed {
        what: "column listing",
        reason,
    };
    pocaduck_edge_ipc_check::check_stream(body).map_err(|e| bad(e.to_string()))?;
    let reader = StreamReader::try_new(body, None).map_err(|e| bad(e.to_string()))?;
    Ok(reader.schema().as_ref().clone())
}

/// The new rows' ids from an insert reply (an IPC stream with a `$row_id` column).
pub fn parse_row_ids(body: &[u8]) -> Result<Vec<u64>> {
    let bad = |reason: String| Error::Malformed {
        what: "insert reply",
        reason,
    };
    pocaduck_edge_ipc_check::check_stream(body).map_err(|e| bad(e.to_string()))?;
    let reader = StreamReader::try_new(body, None).map_err(|e| bad(e.to_string()))?;
    let mut ids = Vec::new();
    for batch in reader {
        let batch = batch.map_err(|e| bad(e.to_string()))?;
        let column = batch
            .column_by_name("$row_id")
            .ok_or_else(|| bad("no $row_id column".into()))?;
        if column.data_type() != &DataType::UInt64 {
            return Err(bad(format!("$row_id is {}", column.data_type())));
        }
        ids.extend(column.as_primitive::<UInt64Type>().values().iter());
    }
    Ok(ids)
}

/// The `Code` and `Message` of an S3-style `<Error>` body, when it has them.
pub fn parse_error(body: &[u8]) -> (Option<String>, Option<String>) {
    let text = String::from_utf8_lossy(body);
    let element = |tag: &str| {
        let open = format!("<{tag}>");
        let start = text.find(&open)? + open.len();
        let end = text[start..].find(&format!("</{tag}>"))? + start;
        Some(unescape(&text[start..end]))
    };
    (element("Code"), element("Message"))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_versions() {
        assert_eq!(parse_server_version("vast 5.4.0.0"), Some([5, 4, 0, 0]));
        for bad in ["vast 5.4.0", "vast 5.4.0.0.1", "nginx", "vast 5.x.0.0", ""] {
            assert_eq!(parse_server_version(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn listings_round_trip_through_planus() {
        let response = tabular::ListTablesResponse {
            bucket_name: Some("b".into()),
            schema_name: Some("s".into()),
            tables: Some(vec![tabular::ObjectDetails {
                name: Some("t".into()),
                properties: Some(String::new()),
                handle: Some("1".into()),
                num_rows: 12,
                ..Default::default()
            }]),
        };
        let mut builder = planus::Builder::new();
        let body = builder.finish(&response, None).to_vec();
        assert_eq!(
            parse_tables(&body).unwrap(),
            [Entry {
                name: "t".into(),
                num_rows: 12
            }]
        );
        assert!(parse_tables(&body[..body.len() / 2]).is_err());
    }

    #[test]
    fn s3_errors() {
        let body = b"<?xml version=\"1.0\"?><Error><Code>SlowDown</Code><Message>a &amp; b</Message></Error>";
        assert_eq!(
            parse_error(body),
            (Some("SlowDown".into()), Some("a & b".into()))
        );
        assert_eq!(parse_error(b""), (None, None));
    }
}
