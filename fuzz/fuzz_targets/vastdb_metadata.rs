//! The replies to VastDB's metadata calls: column listings and insert replies (Arrow IPC
//! streams), schema and table listings and statistics (flatbuffers), S3 error bodies and
//! the `Server` header. The first byte chooses the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocaduck_edge_vastdb::reply;

fuzz_target!(|data: &[u8]| {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    match which % 7 {
        0 => drop(reply::parse_columns(body)),
        1 => drop(reply::parse_row_ids(body)),
        2 => drop(reply::parse_schemas(body)),
        3 => drop(reply::parse_tables(body)),
        4 => drop(reply::parse_table_stats(body)),
        5 => drop(reply::parse_error(body)),
        _ => drop(std::str::from_utf8(body).map(reply::parse_server_version)),
    }
});
