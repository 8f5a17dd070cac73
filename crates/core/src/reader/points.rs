//! The points plan: from some labels' index entries and a [`Selection`], the byte ranges
//! of the points files to fetch, the pieces (chunks of rows) to decode from them, and the
//! decoding of those pieces into the points the selection keeps.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use bytes::Bytes;
use parquet::file::metadata::ParquetMetaData;

use crate::answer::{LabelRun, Labelled, Storage};
use crate::cloud::{interleave, BBox, Column, PointCloud};
use crate::error::{Error, Result};
use crate::index::IndexEntry;
use crate::manifest::Manifest;
use crate::plan::{merge_ranges, plan_label, Chunk, COALESCE_GAP};
use crate::read::{decode_point_columns, parse_footer, SparseFile};
use crate::reader::Selection;

/// A piece of one label to read: a chunk of its rows, the rank of the chunk's first row
/// among the label's points, and the label's point count (what [`Selection::apply`] takes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    /// The label.
    pub label: u64,
    /// Its rows in a points file, and the bytes that hold them.
    pub chunk: Chunk,
    /// The rank of the chunk's first row among the points read for the label.
    pub first_rank: u64,
    /// Points read for the label: all of it, or its coarse level.
    pub count: u64,
}

/// The pieces of `entry` (a label's entry, or its coarse level's, as read): chunks of whole
/// row groups of at most about `piece_bytes` each ([`plan_label`]), in the label's order.
pub fn label_pieces(
    entry: &IndexEntry,
    meta: &ParquetMetaData,
    piece_bytes: u64,
) -> Result<Vec<Piece>> {
    let mut first_rank = 0;
    Ok(plan_label(entry, meta, piece_bytes)?
        .into_iter()
        .map(|chunk| {
            let piece = Piece {
                label: entry.label,
                first_rank,
                count: entry.point_count,
                chunk,
            };
            first_rank += piece.chunk.rows.take;
            piece
        })
        .collect())
}

/// Byte ranges of one points file to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRanges {
    /// The points file, numbered as [`Manifest::file`] numbers them.
    pub file: u32,
    /// Ascending, disjoint ranges more than [`COALESCE_GAP`] apart.
    pub ranges: Vec<Range<u64>>,
}

/// Ranges of points files merged per file ([`merge_ranges`] with [`COALESCE_GAP`]), files
/// ascending.
pub fn merge_by_file(ranges: impl IntoIterator<Item = (u32, Range<u64>)>) -> Vec<FileRanges> {
    let mut by_file: HashMap<u32, Vec<Range<u64>>> = HashMap::new();
    for (file, range) in ranges {
        by_file.entry(file).or_default().push(range);
    }
    let mut out: Vec<FileRanges> = by_file
        .into_iter()
        .map(|(file, ranges)| FileRanges {
            file,
            ranges: merge_ranges(&ranges, COALESCE_GAP),
        })
        .collect();
    out.sort_unstable_by_key(|f| f.file);
    out
}

/// The byte ranges to fetch to decode `pieces`: their chunks' bytes, merged per file.
pub fn piece_ranges(pieces: &[Piece]) -> Vec<FileRanges> {
    merge_by_file(
        pieces
            .iter()
            .map(|p| (p.chunk.file, p.chunk.bytes.offset..p.chunk.bytes.end())),
    )
}

/// Fetched byte ranges of points files, `(file, first byte, bytes)`, as files the Parquet
/// decoder reads.
pub fn fetched_files(
    manifest: &Manifest,
    parts: impl IntoIterator<Item = (u32, u64, Bytes)>,
) -> Result<HashMap<u32, SparseFile>> {
    let mut files: HashMap<u32, SparseFile> = HashMap::new();
    for (file, start, bytes) in parts {
        let size = points_file(manifest, file)?.size;
        files
            .entry(file)
            .or_insert_with(|| SparseFile::new(size))
            .insert(start, bytes);
    }
    Ok(files)
}

/// Decodes the footer of points file `file` from the bytes of its `footer` range, checking
/// them against the footer's hash when the manifest records one, and that it has a label
/// column, one column per dim and well-formed row-group hashes, if any.
pub fn points_footer(manifest: &Manifest, file: u32, bytes: &[u8]) -> Result<Arc<ParquetMetaData>> {
    let data = points_file(manifest, file)?;
    let path = &data.path;
    if let Some(expected) = &data.footer_xxh3 {
        crate::integrity::check(format_args!("the footer of {path}"), bytes, expected)?;
    }
    let meta = parse_footer(path, bytes)?;
    let columns = meta.file_metadata().schema_descr().num_columns();
    if columns != manifest.dims() + 1 {
        return Err(Error::Points(format!(
            "{path} has {columns} columns, expected a label and {} dims",
            manifest.dims()
        )));
    }
    crate::integrity::row_group_hashes(path, &meta)?;
    Ok(meta)
}

fn points_file(manifest: &Manifest, file: u32) -> Result<&crate::manifest::DataFile> {
    manifest
        .file(file)
        .ok_or_else(|| Error::Manifest(format!("no points file {file}")))
}

/// A label of a [`PointsPlan`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedLabel {
    /// Its index entry.
    pub entry: IndexEntry,
    /// What is read of it for the selection's `limit`: its coarse level, as an entry of its
    /// own, when that has enough points ([`Manifest::entry_for_limit`]); else `entry`.
    pub read: IndexEntry,
}

impl PlannedLabel {
    /// The label.
    pub fn label(&self) -> u64 {
        self.entry.label
    }
}

/// The reads of some labels' points for a selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PointsPlan {
    /// The points kept of each label.
    pub selection: Selection,
    /// The labels in the order asked (repeats included).
    pub labels: Vec<PlannedLabel>,
}

impl PointsPlan {
    /// The plan of reading the labels of `entries` (index entries of `manifest`) for
    /// `selection`. A `limit` that keeps every point of each label is dropped, so that
    /// the labels are read, and may be answered, as stored.
    pub fn new<'a>(
        manifest: &Manifest,
        entries: impl IntoIterator<Item = &'a IndexEntry>,
        mut selection: Selection,
    ) -> Self {
        let entries: Vec<&IndexEntry> = entries.into_iter().collect();
        if let Some(limit) = selection.limit {
            if entries.iter().all(|e| e.point_count <= limit) {
                selection.limit = None;
            }
        }
        let labels = entries
            .into_iter()
            .map(|entry| PlannedLabel {
                read: manifest.entry_for_limit(entry, selection.limit),
                entry: entry.clone(),
            })
            .collect();
        Self { selection, labels }
    }

    /// The selection the plan reads for: the one asked for, without a `limit` that keeps
    /// every point.
    pub fn selection(&self) -> &Selection {
        &self.selection
    }

    /// The byte ranges to fetch, from the index entries alone (before any footer is
    /// loaded): what each label reads, merged per file. Every piece lies inside them.
    pub fn ranges(&self) -> Vec<FileRanges> {
        merge_by_file(
            self.labels
                .iter()
                .map(|l| (l.read.file, l.read.bytes.offset..l.read.bytes.end())),
        )
    }

    /// Points the selection's `limit` keeps over all labels: the number of points answered
    /// when there is no `bbox`, an upper bound when there is one.
    pub fn sampled_points(&self) -> u64 {
        self.labels
            .iter()
            .map(|l| self.selection.sampled(l.entry.point_count))
            .sum()
    }

    /// The bounds of label `i`'s answer when they are its entry's: the selection keeps
    /// every point of it.
    pub fn whole_bbox(&self, i: usize) -> Option<&BBox> {
        let entry = &self.labels.get(i)?.entry;
        self.selection
            .keeps_every_point(entry.point_count)
            .then_some(&entry.bbox)
    }

    /// The pieces of each label ([`label_pieces`] of what it reads), given the footers of
    /// its files by `footer`; one list per label, in order.
    pub fn pieces<'m>(
        &self,
        footer: impl Fn(u32) -> Option<&'m ParquetMetaData>,
        piece_bytes: u64,
    ) -> Result<Vec<Vec<Piece>>> {
        self.labels
            .iter()
            .map(|l| label_pieces(&l.read, label_footer(&footer, &l.read)?, piece_bytes))
            .collect()
    }

    /// Decodes the labels from `files` (holding at least [`PointsPlan::ranges`]), given the
    /// footers of their files by `footer`, keeping the points the selection keeps. Every
    /// label gets a run, empty when nothing is kept. Whole labels (the selection keeps the
    /// stored points) stay in columns, as stored, with their entries' bounds; otherwise the
    /// kept points are rows.
    pub fn decode<'m>(
        &self,
        manifest: &Manifest,
        footer: impl Fn(u32) -> Option<&'m ParquetMetaData>,
        files: &HashMap<u32, SparseFile>,
    ) -> Result<Labelled> {
        let dims = manifest.dims();
        let whole = self.selection.keeps_stored_points();
        let mut columns: Vec<Vec<Column>> = Vec::new();
        let mut values = Vec::new();
        let mut rows = 0usize;
        let mut runs = Vec::with_capacity(self.labels.len());
        for (label, pieces) in self.labels.iter().zip(self.pieces(&footer, u64::MAX)?) {
            let first_row = rows;
            for piece in pieces {
                let Chunk {
                    file, rows: span, ..
                } = &piece.chunk;
                let meta = label_footer(&footer, &label.read)?;
                let path = &points_file(manifest, *file)?.path;
                let sparse = files.get(file).cloned().unwrap_or_default();
                let decoded = decode_point_columns(path, meta, sparse, span, dims)?;
                if whole {
                    rows += span.take as usize;
                    columns.push(decoded);
                } else {
                    let cloud = PointCloud::new(dims, interleave(&decoded, 0..span.take as usize))?;
                    let kept = self.selection.apply(piece.first_rank, piece.count, cloud);
                    rows += kept.len();
                    values.extend_from_slice(kept.values());
                }
            }
            runs.push(LabelRun {
                label: label.label(),
                rows: first_row..rows,
                bbox_hint: whole.then(|| label.entry.bbox.clone()),
            });
        }
        let points = if whole {
            Storage::Columns(columns)
        } else {
            Storage::Rows(vec![values.into()])
        };
        Ok(Labelled { dims, points, runs })
    }
}

/// The footer of the file `read` (what a label reads) lies in.
fn label_footer<'m>(
    footer: &impl Fn(u32) -> Option<&'m ParquetMetaData>,
    read: &IndexEntry,
) -> Result<&'m ParquetMetaData> {
    footer(read.file).ok_or_else(|| {
        Error::Index(format!(
            "label {} is in points file {}, whose footer is not loaded",
            read.label, read.file
        ))
    })
}

#[cfg(all(test, feature = "write"))]
mod tests {
    use super::*;
    use crate::reader::selection::leading_bbox;
    use crate::reader::test_data::{cloud, Dataset};
    use crate::write::WriterOptions;
    use proptest::prelude::*;

    /// A label above 2^53, which an f64 cannot hold.
    const BIG: u64 = (1 << 53) + 1;

    /// Reads a plan as a host does: fetches only its ranges, then decodes.
    fn read(d: &Dataset, plan: &PointsPlan) -> Labelled {
        let mut parts = Vec::new();
        for f in plan.ranges() {
            let path = &d.manifest.file(f.file).unwrap().path;
            for r in f.ranges {
                parts.push((f.file, r.start, d.fetch(path, r)));
            }
        }
        let files = fetched_files(&d.manifest, parts).unwrap();
        plan.decode(&d.manifest, |f| d.footer(f), &files).unwrap()
    }

    fn sorted(points: &PointCloud) -> PointCloud {
        let mut points = points.clone();
        points.sort_unique();
        points
    }

    fn options(row_group_rows: usize, file_rows: usize, coarse_points: u64) -> WriterOptions {
        WriterOptions {
            row_group_rows,
            file_rows,
            coarse_points,
            ..Default::default()
        }
    }

    fn sample() -> (Vec<(u64, PointCloud)>, Dataset) {
        let labels = vec![
            (3, cloud(1, 40, 10, 0)),
            (9, cloud(2, 700, 30, -15)),
            (BIG, cloud(3, 350, 50, 1 << 40)),
            (u64::MAX, cloud(4, 5, 3, 7)),
        ];
        let d = Dataset::write(&labels, options(100, 400, 0));
        (labels, d)
    }

    #[test]
    fn whole_labels_decode_as_stored_with_their_entries_bounds() {
        let (labels, d) = sample();
        assert!(d.manifest.files.len() >= 2, "labels span several files");
        let asked = [BIG, 3, u64::MAX, BIG, 9];
        let plan = PointsPlan::new(
            &d.manifest,
            asked.iter().map(|l| d.entry(*l)),
            Selection::default(),
        );
        let got = read(&d, &plan);
        assert!(matches!(got.points, Storage::Columns(_)));
        assert_eq!(got.runs.len(), asked.len());
        let mut total = 0;
        for (i, (label, run)) in asked.iter().zip(&got.runs).enumerate() {
            let expected = sorted(&labels.iter().find(|(l, _)| l == label).unwrap().1);
            assert_eq!(run.label, *label);
            assert_eq!(
                got.int64(run.rows.clone()),
                expected.values(),
                "label {label}"
            );
            assert_eq!(run.bbox_hint, expected.bbox(), "label {label}");
            assert_eq!(plan.whole_bbox(i), expected.bbox().as_ref());
            total += expected.len() as u64;
        }
        assert_eq!(plan.sampled_points(), total);
        // Ranges per file, ascending, one per file here: the labels of a file lie together.
        let files: Vec<u32> = plan.ranges().iter().map(|f| f.file).collect();
        let mut expected_files: Vec<u32> = asked.iter().map(|l| d.entry(*l).file).collect();
        expected_files.sort_unstable();
        expected_files.dedup();
        assert_eq!(files, expected_files);
    }

    #[test]
    fn a_selection_decodes_the_kept_points_as_rows() {
        let (labels, d) = sample();
        let selection = Selection {
            limit: Some(60),
            bbox: leading_bbox(&[-20, -20, 5, 5], 3),
        };
        let asked = [9, 3, BIG];
        let plan = PointsPlan::new(
            &d.manifest,
            asked.iter().map(|l| d.entry(*l)),
            selection.clone(),
        );
        let got = read(&d, &plan);
        assert!(matches!(got.points, Storage::Rows(_)));
        for (label, run) in asked.iter().zip(&got.runs) {
            let all = sorted(&labels.iter().find(|(l, _)| l == label).unwrap().1);
            // The limit's spread over the label, then the box.
            let mut expected = all.spread_sample(0, all.len() as u64, 60);
            expected.retain(|p| (-20..=5).contains(&p[0]) && (-20..=5).contains(&p[1]));
            assert_eq!(run.label, *label);
            assert_eq!(
                got.int64(run.rows.clone()),
                expected.values(),
                "label {label}"
            );
            assert_eq!(run.bbox_hint, None);
        }
        assert!(
            !got.runs[0].rows.is_empty(),
            "label 9 keeps points in the box"
        );
        assert!(
            got.runs[2].rows.is_empty(),
            "label BIG lies outside the box"
        );
        assert_eq!(plan.sampled_points(), 60 + 40 + 60);
        assert_eq!(plan.whole_bbox(1), None, "a box is no label's bounds");
    }

    #[test]
    fn a_limit_reads_the_coarse_level_when_it_has_enough_points() {
        let points = cloud(5, 3000, 1000, 0);
        let d = Dataset::write(&[(7, points.clone())], options(64, 10_000, 100));
        let entry = d.entry(7);
        let coarse = entry
            .coarse
            .clone()
            .expect("a big label has a coarse level");
        let all = sorted(&points);
        let level: Vec<i64> = all
            .rows()
            .step_by(coarse.stride as usize)
            .flatten()
            .copied()
            .collect();
        let level = PointCloud::new(3, level).unwrap();
        for (limit, reads_level) in [
            (Some(50), true),
            (Some(coarse.point_count), true),
            (Some(coarse.point_count + 1), false),
            (None, false),
        ] {
            let selection = Selection { limit, bbox: None };
            let plan = PointsPlan::new(&d.manifest, [entry], selection.clone());
            let read_entry = &plan.labels[0].read;
            assert_eq!(
                read_entry.file >= d.manifest.files.len() as u32,
                reads_level,
                "{limit:?}"
            );
            assert_eq!(plan.ranges()[0].file, read_entry.file);
            let source = if reads_level { &level } else { &all };
            let expected = selection.apply(0, source.len() as u64, source.clone());
            let got = read(&d, &plan);
            assert_eq!(
                got.int64(got.runs[0].rows.clone()),
                expected.values(),
                "{limit:?}"
            );
            assert_eq!(plan.whole_bbox(0).is_some(), limit.is_none(), "{limit:?}");
            assert_eq!(
                plan.sampled_points(),
                limit.map_or(all.len() as u64, |n| n.min(all.len() as u64))
            );
        }
    }

    #[test]
    fn a_limit_that_keeps_every_point_of_each_label_is_dropped() {
        let (_, d) = sample();
        let (small, big) = (d.entry(3), d.entry(BIG));
        let most = small.point_count.max(big.point_count);
        for (limit, kept) in [
            (most, None),
            (most + 1, None),
            (u64::MAX, None),
            (most - 1, Some(most - 1)),
        ] {
            let selection = Selection {
                limit: Some(limit),
                bbox: None,
            };
            let plan = PointsPlan::new(&d.manifest, [small, big], selection);
            assert_eq!(plan.selection().limit, kept, "{limit}");
            // Read as stored: the pieces of the plan without a limit.
            if kept.is_none() {
                let stored = PointsPlan::new(&d.manifest, [small, big], Selection::default());
                assert_eq!(plan.ranges(), stored.ranges());
                assert!(plan.selection().keeps_stored_points());
            }
        }
    }

    #[test]
    fn footers_and_files_the_plan_needs_are_checked() {
        let (_, d) = sample();
        let plan = PointsPlan::new(&d.manifest, [d.entry(9)], Selection::default());
        let e = plan.pieces(|_| None, u64::MAX).unwrap_err().to_string();
        assert!(
            e.contains("label 9 is in points file 0, whose footer is not loaded"),
            "{e}"
        );
        let e = fetched_files(&d.manifest, [(99, 0, Bytes::new())])
            .unwrap_err()
            .to_string();
        assert!(e.contains("no points file 99"), "{e}");
        // A footer of 3 dims is refused for a manifest of 2.
        let file = &d.manifest.files[0];
        let f = file.footer.unwrap();
        let bytes = d.fetch(&file.path, f.offset..f.end());
        assert!(points_footer(&d.manifest, 0, &bytes).is_ok());
        let mut two = d.manifest.clone();
        two.dims.pop();
        let e = points_footer(&two, 0, &bytes).unwrap_err().to_string();
        assert!(
            e.contains("has 4 columns, expected a label and 2 dims"),
            "{e}"
        );
        assert!(points_footer(&d.manifest, 0, &bytes[1..]).is_err());
    }

    /// Whether `range` lies inside one of `file`'s ranges in `merged`.
    fn covered(merged: &[FileRanges], file: u32, range: Range<u64>) -> bool {
        merged
            .iter()
            .filter(|f| f.file == file)
            .flat_map(|f| &f.ranges)
            .any(|r| r.start <= range.start && range.end <= r.end)
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(24))]

        #[test]
        fn a_plan_covers_every_piece_and_reads_the_selection_back(
            sizes in proptest::collection::vec(1usize..400, 1..6),
            row_group_rows in 16usize..200,
            file_rows in 100usize..1500,
            piece_bytes in 1u64..20_000,
            limit in proptest::option::of(0u64..500),
            picks in proptest::collection::vec(any::<proptest::sample::Index>(), 1..6),
        ) {
            let labels: Vec<(u64, PointCloud)> = sizes
                .iter()
                .enumerate()
                .map(|(i, &n)| (i as u64 * (u64::MAX / 6) + 1, cloud(i as u64, n, 20, 100 * i as i64)))
                .collect();
            let d = Dataset::write(&labels, options(row_group_rows, file_rows, 0));
            let asked: Vec<&(u64, PointCloud)> = picks.iter().map(|p| &labels[p.index(labels.len())]).collect();
            let selection = Selection { limit, bbox: None };
            let plan = PointsPlan::new(&d.manifest, asked.iter().map(|(l, _)| d.entry(*l)), selection.clone());
            let ranges = plan.ranges();
            for pair in ranges.windows(2) {
                prop_assert!(pair[0].file < pair[1].file);
            }
            for f in &ranges {
                for pair in f.ranges.windows(2) {
                    prop_assert!(pair[0].end + COALESCE_GAP < pair[1].start);
                }
            }
            let pieces = plan.pieces(|f| d.footer(f), piece_bytes).unwrap();
            let flat: Vec<Piece> = pieces.iter().flatten().cloned().collect();
            let fetched = piece_ranges(&flat);
            for (label, pieces) in plan.labels.iter().zip(&pieces) {
                let mut rank = 0;
                for p in pieces {
                    prop_assert_eq!(p.label, label.label());
                    prop_assert_eq!(p.count, label.read.point_count);
                    prop_assert_eq!(p.first_rank, rank);
                    let bytes = p.chunk.bytes.offset..p.chunk.bytes.end();
                    prop_assert!(covered(&ranges, p.chunk.file, bytes.clone()), "{:?} outside the plan's ranges", p.chunk);
                    prop_assert!(covered(&fetched, p.chunk.file, bytes), "{:?} outside piece_ranges", p.chunk);
                    rank += p.chunk.rows.take;
                }
                prop_assert_eq!(rank, label.read.point_count);
            }
            let got = read(&d, &plan);
            prop_assert_eq!(got.runs.len(), asked.len());
            for ((label, points), run) in asked.iter().zip(&got.runs) {
                let all = sorted(points);
                let expected = selection.apply(0, all.len() as u64, all);
                prop_assert_eq!(run.label, *label);
                prop_assert_eq!(got.int64(run.rows.clone()), expected.values());
            }
        }
    }
}
