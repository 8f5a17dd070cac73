//! `manifest.json` as a reader loads it: parsed and validated, then looked into as the
//! readers do.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pocaduck_edge_core::Manifest;

fuzz_target!(|data: &[u8]| {
    let Ok(manifest) = Manifest::from_json(data) else {
        return;
    };
    for page in &manifest.label_index.pages {
        let _ = manifest.page_for(page.first_label);
        let _ = manifest.page_for(page.last_label.wrapping_add(1));
        let _ = page.range.end();
    }
    for (i, file) in manifest.all_files().enumerate() {
        let _ = manifest.file(i as u32);
        let _ = file.footer.map(|f| f.end());
    }
    let _ = Manifest::from_json(&manifest.to_json()).expect("a valid manifest round-trips");
});
