//! Reading an edge-layout dataset, sans IO: the steps every host shares (the proxy over an
//! object store, the browser through the wasm client), as pure functions and small state
//! machines. A host fetches what a step asks for and hands the bytes back:
//!
//! - [`labels`]: finding a label's index entry and listing labels page by page, which ask
//!   for index pages ([`labels::LabelPaging`], [`labels::labels_after`], [`labels::lookup`]);
//! - [`blocks`]: the PoCADuck blocks of a label, one range of the blocks file
//!   ([`blocks::BlocksPlan`]);
//! - [`points`]: the points plan of some labels (their entries, the byte ranges to fetch
//!   and the pieces to decode: [`points::PointsPlan`]), and decoding it;
//! - [`selection`]: which points of a label an answer keeps (`limit`, then `bbox`).

pub mod blocks;
pub mod labels;
pub mod points;
pub mod selection;

#[cfg(all(test, feature = "write"))]
mod test_data;

pub use blocks::{blocks_footer, BlocksPlan};
pub use labels::{
    decode_page, labels_after, labels_in, lookup, LabelPaging, LabelsPage, LabelsStep, Lookup,
    NextAfter,
};
pub use points::{
    fetched_files, label_pieces, merge_by_file, piece_ranges, points_footer, FileRanges, Piece,
    PlannedLabel, PointsPlan,
};
pub use selection::Selection;
