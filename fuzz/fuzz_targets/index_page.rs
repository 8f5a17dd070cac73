//! A label index page as a reader fetches it: decoded and checked, then searched.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocaduck_edge_core::IndexPage;

fuzz_target!(|data: &[u8]| {
    let Ok(page) = IndexPage::decode(data) else {
        return;
    };
    for entry in &page.entries {
        assert_eq!(page.find(entry.label), Some(entry));
        let _ = entry.bytes.end();
    }
    assert_eq!(IndexPage::decode(&page.encode()).ok(), Some(page));
});
