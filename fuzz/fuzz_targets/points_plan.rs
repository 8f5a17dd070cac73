//! The points planner over a hostile index page and footer, as a reader fetches them: each
//! entry planned for several selections and piece sizes, and decoded from a file whose only
//! fetched bytes are the footer's.
//!
//! Input: a little-endian `u32` length, that many bytes of index page, then the bytes of a
//! points file's footer range (metadata, its length, `PAR1`).
#![no_main]

use std::collections::HashMap;

use bytes::Bytes;
use libfuzzer_sys::fuzz_target;
use pocaduck_edge_core::manifest::{
    ByteRange, DataFile, LabelIndex, FORMAT_NAME, FORMAT_VERSION, POINT_ORDER,
};
use pocaduck_edge_core::plan::plan_blocks;
use pocaduck_edge_core::read::{parse_footer, SparseFile};
use pocaduck_edge_core::reader::{PointsPlan, Selection};
use pocaduck_edge_core::{IndexPage, Manifest};

/// A manifest of `dims` dims whose points file and coarse file are `size` bytes, all of
/// it their footer range.
fn manifest(dims: usize, size: u64) -> Manifest {
    let file = |path: &str| DataFile {
        path: path.into(),
        size,
        etag: "0".into(),
        rows: 0,
        footer: Some(ByteRange {
            offset: 0,
            length: size,
        }),
        footer_xxh3: None,
    };
    Manifest {
        format: FORMAT_NAME.into(),
        version: FORMAT_VERSION,
        dims: (0..dims).map(|d| format!("d{d}")).collect(),
        voxel_size_nm: None,
        label_count: 0,
        point_count: 0,
        bbox: None,
        point_order: POINT_ORDER.into(),
        files: vec![file("points/part-00000.parquet")],
        coarse: vec![file("coarse/part-00000.parquet")],
        label_index: LabelIndex {
            file: file("index/labels.idx"),
            pages: Vec::new(),
        },
        blocks: None,
        attribution: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let Some((head, rest)) = data.split_at_checked(4) else {
        return;
    };
    let page_len = u32::from_le_bytes([head[0], head[1], head[2], head[3]]) as usize;
    let Some((page, footer)) = rest.split_at_checked(page_len) else {
        return;
    };
    let Ok(page) = IndexPage::decode(page) else {
        return;
    };
    let Ok(meta) = parse_footer("points/part-00000.parquet", footer) else {
        return;
    };
    let manifest = manifest(page.dims, footer.len() as u64);
    let footer_of = |file: u32| (file < 2).then_some(&*meta);
    let mut fetched = SparseFile::new(footer.len() as u64);
    fetched.insert(0, Bytes::copy_from_slice(footer));
    let files = HashMap::from([(0, fetched.clone()), (1, fetched)]);
    for entry in &page.entries {
        let _ = plan_blocks(entry, &meta);
        for (limit, piece_bytes) in [
            (None, u64::MAX),
            (Some(entry.point_count / 3), 4096),
            (Some(1), 1),
        ] {
            let plan = PointsPlan::new(&manifest, [entry], Selection { limit, bbox: None });
            let _ = plan.ranges();
            let _ = plan.sampled_points();
            let _ = plan.whole_bbox(0);
            let _ = plan.pieces(footer_of, piece_bytes);
            if let Ok(labelled) = plan.decode(&manifest, footer_of, &files) {
                for run in &labelled.runs {
                    let _ = labelled.bbox(run.rows.clone());
                }
            }
        }
    }
});
