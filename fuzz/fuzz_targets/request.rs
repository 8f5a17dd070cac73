//! The parsers of a request's parts: a label of the path, the points, labels and reply
//! options of the query string, a `Range` and an `If-None-Match` header, a `POST …/points`
//! body and a reply page's resume point. The first byte chooses the parser.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocaduck_edge_proxy::files::{none_match, parse_range};
use pocaduck_edge_proxy::options::{labels_options, points_options, reply_options};
use pocaduck_edge_proxy::request::{body_labels, label};
use pocaduck_edge_vastdb::{Progress, QuerySettings};

fuzz_target!(|data: &[u8]| {
    let Some((&which, rest)) = data.split_first() else {
        return;
    };
    if which % 8 == 5 {
        if let Ok(labels) = body_labels(rest, 1000) {
            assert!(!labels.is_empty() && labels.len() <= 1000);
        }
        return;
    }
    let Ok(text) = std::str::from_utf8(rest) else {
        return;
    };
    match which % 8 {
        0 => drop(label(text)),
        1 => drop(points_options(Some(text), usize::from(which >> 3) % 5 + 1)),
        2 => drop(labels_options(Some(text))),
        3 => drop(reply_options(Some(text))),
        4 => {
            let size = u64::from(which >> 3) * 1000;
            if let Ok(Some(range)) = parse_range(Some(text), size) {
                assert!(range.start < range.end && range.end <= size, "{range:?}");
            }
        }
        6 => drop(none_match(Some(text), "0123456789abcdef")),
        _ => {
            let settings = QuerySettings {
                num_sub_splits: u32::from(which >> 3) % 8 + 1,
                ..QuerySettings::default()
            };
            drop(Progress::resumed(&settings, text));
        }
    }
});
