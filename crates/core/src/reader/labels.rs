//! The label index as a reader walks it: a label's entry, and labels listed page by page
//! with a cursor, over index pages that the host fetches when a step asks for one.

use crate::error::{Error, Result};
use crate::index::{IndexEntry, IndexPage};
use crate::manifest::{Manifest, PageRef};

/// When a page of listed labels names the cursor (`next_after`) to the next page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextAfter {
    /// Whenever the page is full (`limit` labels), its last label, even when no label
    /// follows: the edge layout's listing, which stops at a full page without reading on
    /// (a last full page is followed by an empty one with no cursor).
    WhenFull,
    /// When the page is full and some label follows: a listing that holds every label (a
    /// VastDB table's), so it knows.
    WhenMore,
}

impl NextAfter {
    /// The cursor after `labels` (a page of at most `limit` labels), `more` saying whether
    /// some label follows them.
    fn cursor(self, labels: &[u64], limit: usize, more: bool) -> Option<u64> {
        let full = labels.len() == limit;
        let named = match self {
            NextAfter::WhenFull => full,
            NextAfter::WhenMore => full && more,
        };
        named.then(|| labels.last().copied()).flatten()
    }
}

/// A page of listed labels.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelsPage {
    /// Up to `limit` labels, ascending.
    pub labels: Vec<u64>,
    /// The `after` of the next page, `None` when the listing ends here (see [`NextAfter`]).
    pub next_after: Option<u64>,
}

/// A listing of up to `limit` labels greater than `after`, as a state machine over the
/// index pages: [`LabelPaging::wants`] names the page to hand to [`LabelPaging::feed`]
/// next, until it names none; [`LabelPaging::finish`] then gives the labels.
#[derive(Debug, Clone)]
pub struct LabelPaging {
    after: Option<u64>,
    limit: usize,
    rule: NextAfter,
    /// The page to read next.
    page: usize,
    /// How many pages the index has.
    pages: usize,
    labels: Vec<u64>,
    /// Whether the last page read holds labels after those taken.
    more_in_page: bool,
}

impl LabelPaging {
    /// A listing over the index pages `pages` (the manifest's `label_index.pages`).
    pub fn new(pages: &[PageRef], after: Option<u64>, limit: usize, rule: NextAfter) -> Self {
        Self {
            after,
            limit,
            rule,
            page: after.map_or(0, |a| pages.partition_point(|p| p.last_label <= a)),
            pages: pages.len(),
            labels: Vec::with_capacity(limit.min(4096)),
            more_in_page: false,
        }
    }

    /// The index page to feed next, `None` when the listing is complete.
    pub fn wants(&self) -> Option<usize> {
        (self.labels.len() < self.limit && self.page < self.pages).then_some(self.page)
    }

    /// Takes the labels of page [`LabelPaging::wants`] named.
    pub fn feed(&mut self, page: &IndexPage) {
        self.take(page.entries.iter().map(|e| e.label));
    }

    /// Takes labels from the next page's ascending `labels`.
    fn take(&mut self, labels: impl IntoIterator<Item = u64>) {
        let after = self.after;
        let mut labels = labels.into_iter().filter(|l| after.is_none_or(|a| *l > a));
        while self.labels.len() < self.limit {
            match labels.next() {
                Some(l) => self.labels.push(l),
                None => break,
            }
        }
        self.more_in_page = labels.next().is_some();
        self.page += 1;
    }

    /// The labels, and the cursor its rule names. Labels follow when the last page read
    /// holds more, or a page is left unread (index pages are never empty).
    pub fn finish(self) -> LabelsPage {
        let more = self.more_in_page || self.page < self.pages;
        LabelsPage {
            next_after: self.rule.cursor(&self.labels, self.limit, more),
            labels: self.labels,
        }
    }
}

/// A step of a listing over the pages a host has loaded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LabelsStep {
    /// The listing.
    Labels(LabelsPage),
    /// Index page `i` must be loaded first; then ask again.
    NeedPage(usize),
}

/// Up to `limit` labels greater than `after` over index pages `pages`, those loaded given
/// by `loaded`: the listing, or the first page it needs that is not loaded.
pub fn labels_after<'a>(
    pages: &[PageRef],
    after: Option<u64>,
    limit: usize,
    rule: NextAfter,
    loaded: impl Fn(usize) -> Option<&'a IndexPage>,
) -> LabelsStep {
    let mut paging = LabelPaging::new(pages, after, limit, rule);
    while let Some(i) = paging.wants() {
        match loaded(i) {
            Some(page) => paging.feed(page),
            None => return LabelsStep::NeedPage(i),
        }
    }
    LabelsStep::Labels(paging.finish())
}

/// Up to `limit` labels greater than `after` from every label of a listing, `sorted`
/// ascending: the same listing as over index pages of those labels.
pub fn labels_in(sorted: &[u64], after: Option<u64>, limit: usize, rule: NextAfter) -> LabelsPage {
    let start = after.map_or(0, |a| sorted.partition_point(|&l| l <= a));
    // All of them as one page.
    let mut paging = LabelPaging {
        after,
        limit,
        rule,
        page: 0,
        pages: 1,
        labels: Vec::with_capacity(limit.min(sorted.len() - start)),
        more_in_page: false,
    };
    if paging.wants().is_some() {
        paging.take(sorted[start..].iter().copied());
    }
    paging.finish()
}

/// Where a label's index entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// Its entry.
    Found(&'a IndexEntry),
    /// The dataset does not hold the label: no page can hold it, or its page lacks it.
    Absent,
    /// Index page `i` would hold it and must be loaded first.
    NeedPage(usize),
}

/// The index entry of `label`, over the index pages `loaded` gives.
pub fn lookup<'a>(
    manifest: &Manifest,
    label: u64,
    loaded: impl FnOnce(usize) -> Option<&'a IndexPage>,
) -> Lookup<'a> {
    let Some((i, _)) = manifest.page_for(label) else {
        return Lookup::Absent;
    };
    match loaded(i) {
        Some(page) => page.find(label).map_or(Lookup::Absent, Lookup::Found),
        None => Lookup::NeedPage(i),
    }
}

/// Decodes index page `i` of `manifest`'s label index from its bytes, checking them against
/// the page's hash when the manifest records one, and that it holds the labels the manifest
/// says (its first and last).
pub fn decode_page(manifest: &Manifest, i: usize, bytes: &[u8]) -> Result<IndexPage> {
    let reference = manifest
        .label_index
        .pages
        .get(i)
        .ok_or_else(|| Error::Index(format!("the index has no page {i}")))?;
    if let Some(expected) = &reference.xxh3 {
        crate::integrity::check(format_args!("index page {i}"), bytes, expected)?;
    }
    let page = IndexPage::decode(bytes)?;
    let (first, last) = (page.entries.first(), page.entries.last());
    if first.map(|e| e.label) != Some(reference.first_label)
        || last.map(|e| e.label) != Some(reference.last_label)
    {
        return Err(Error::Index(format!(
            "index page {i} does not hold the labels the manifest says"
        )));
    }
    Ok(page)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cloud::BBox;
    use crate::manifest::ByteRange;
    use proptest::prelude::*;
    use std::collections::HashMap;

    fn entry(label: u64) -> IndexEntry {
        IndexEntry {
            label,
            point_count: 1,
            file: 0,
            row_group: 0,
            row_groups: 1,
            row_offset: 0,
            bytes: ByteRange::default(),
            blocks_row: 0,
            blocks_count: 0,
            coarse: None,
            bbox: BBox {
                min: vec![0],
                max: vec![0],
            },
        }
    }

    /// Index pages of `sorted` labels, `per_page` labels each, and their refs.
    fn paged(sorted: &[u64], per_page: usize) -> (Vec<PageRef>, Vec<IndexPage>) {
        sorted
            .chunks(per_page)
            .map(|labels| {
                let page = IndexPage {
                    dims: 1,
                    entries: labels.iter().copied().map(entry).collect(),
                };
                let reference = PageRef {
                    first_label: labels[0],
                    last_label: *labels.last().unwrap(),
                    count: labels.len() as u32,
                    range: ByteRange::default(),
                    xxh3: None,
                };
                (reference, page)
            })
            .unzip()
    }

    /// The listing over every page, each loaded on demand.
    fn list(
        refs: &[PageRef],
        pages: &[IndexPage],
        after: Option<u64>,
        limit: usize,
        rule: NextAfter,
    ) -> LabelsPage {
        let mut paging = LabelPaging::new(refs, after, limit, rule);
        while let Some(i) = paging.wants() {
            paging.feed(&pages[i]);
        }
        paging.finish()
    }

    /// A manifest of no points over the index pages `pages`.
    fn manifest(pages: Vec<PageRef>) -> Manifest {
        let file = crate::manifest::DataFile {
            path: "index.bin".into(),
            size: 0,
            etag: String::new(),
            rows: 0,
            footer: None,
            footer_xxh3: None,
        };
        Manifest {
            format: crate::manifest::FORMAT_NAME.into(),
            version: crate::manifest::FORMAT_VERSION,
            dims: vec!["x".into()],
            voxel_size_nm: None,
            label_count: 0,
            point_count: 0,
            bbox: None,
            point_order: crate::manifest::POINT_ORDER.into(),
            files: vec![],
            coarse: vec![],
            label_index: crate::manifest::LabelIndex { file, pages },
            blocks: None,
            attribution: None,
        }
    }

    /// A label above 2^53, which an f64 cannot hold.
    const BIG: u64 = (1 << 53) + 1;

    #[test]
    fn a_listing_reads_only_the_pages_it_lists() {
        let labels = [1, 2, 3, 10, 11, 12, BIG, BIG + 1, u64::MAX];
        let (refs, pages) = paged(&labels, 3);
        let mut paging = LabelPaging::new(&refs, Some(2), 4, NextAfter::WhenFull);
        assert_eq!(paging.wants(), Some(0));
        paging.feed(&pages[0]);
        assert_eq!(paging.wants(), Some(1));
        paging.feed(&pages[1]);
        assert_eq!(paging.wants(), None, "4 labels listed");
        assert_eq!(
            paging.finish(),
            LabelsPage {
                labels: vec![3, 10, 11, 12],
                next_after: Some(12)
            }
        );
        // After a page's last label, the listing starts at the next page.
        let mut paging = LabelPaging::new(&refs, Some(12), 2, NextAfter::WhenFull);
        assert_eq!(paging.wants(), Some(2));
        paging.feed(&pages[2]);
        assert_eq!(paging.finish().labels, vec![BIG, BIG + 1]);
        // After the last label: nothing to read, nothing listed.
        let paging = LabelPaging::new(&refs, Some(u64::MAX), 5, NextAfter::WhenFull);
        assert_eq!(paging.wants(), None);
        assert_eq!(
            paging.finish(),
            LabelsPage {
                labels: vec![],
                next_after: None
            }
        );
    }

    #[test]
    fn a_full_last_page_names_a_cursor_only_when_full_is_the_rule() {
        let labels = [5, 6, 7, 8];
        let (refs, pages) = paged(&labels, 2);
        for (rule, after, limit, next) in [
            (NextAfter::WhenFull, None, 4, Some(8)),
            (NextAfter::WhenMore, None, 4, None),
            (NextAfter::WhenFull, Some(6), 2, Some(8)),
            (NextAfter::WhenMore, Some(6), 2, None),
            (NextAfter::WhenFull, None, 2, Some(6)),
            (NextAfter::WhenMore, None, 2, Some(6)),
            (NextAfter::WhenMore, None, 3, Some(7)),
            (NextAfter::WhenFull, None, 5, None),
            (NextAfter::WhenMore, None, 5, None),
        ] {
            let page = list(&refs, &pages, after, limit, rule);
            assert_eq!(
                page.next_after, next,
                "{rule:?} after {after:?} limit {limit}"
            );
            assert_eq!(labels_in(&labels, after, limit, rule), page);
        }
    }

    #[test]
    fn labels_after_asks_for_the_first_page_not_loaded() {
        let labels: Vec<u64> = (0..20).map(|i| i * 3).collect();
        let (refs, pages) = paged(&labels, 4);
        let mut loaded: HashMap<usize, IndexPage> = HashMap::new();
        let mut asked = Vec::new();
        let page = loop {
            match labels_after(&refs, Some(10), 7, NextAfter::WhenFull, |i| loaded.get(&i)) {
                LabelsStep::NeedPage(i) => {
                    asked.push(i);
                    loaded.insert(i, pages[i].clone());
                }
                LabelsStep::Labels(page) => break page,
            }
        };
        // Page 0 ends at 9, before `after`: it is never asked for.
        assert_eq!(asked, vec![1, 2]);
        assert_eq!(page.labels, vec![12, 15, 18, 21, 24, 27, 30]);
        assert_eq!(page.next_after, Some(30));
    }

    #[test]
    fn lookup_finds_entries_or_names_the_page() {
        let labels = [1, 4, 9, 16, 25, BIG];
        let (refs, pages) = paged(&labels, 2);
        let manifest = manifest(refs);
        assert_eq!(lookup(&manifest, 16, |_| None), Lookup::NeedPage(1));
        assert_eq!(
            lookup(&manifest, 16, |i| pages.get(i)),
            Lookup::Found(&pages[1].entries[1])
        );
        assert!(
            matches!(lookup(&manifest, BIG, |i| pages.get(i)), Lookup::Found(e) if e.label == BIG)
        );
        // Inside a page's range but not in it, and outside every page.
        assert_eq!(lookup(&manifest, 10, |i| pages.get(i)), Lookup::Absent);
        assert_eq!(lookup(&manifest, 0, |_| None), Lookup::Absent);
        assert_eq!(lookup(&manifest, BIG + 1, |_| None), Lookup::Absent);
    }

    #[test]
    fn pages_must_hold_the_labels_the_manifest_says() {
        let (refs, pages) = paged(&[1, 2, 3, 4], 2);
        let manifest = manifest(refs);
        let bytes = pages[1].encode();
        assert_eq!(decode_page(&manifest, 1, &bytes).unwrap(), pages[1]);
        let e = decode_page(&manifest, 0, &bytes).unwrap_err().to_string();
        assert!(e.contains("index page 0 does not hold the labels"), "{e}");
        let e = decode_page(&manifest, 2, &bytes).unwrap_err().to_string();
        assert!(e.contains("the index has no page 2"), "{e}");
        assert!(decode_page(&manifest, 1, &bytes[1..]).is_err());
    }

    /// Distinct sorted labels, spread over all of `u64` (most above 2^53).
    fn sorted_labels() -> impl Strategy<Value = Vec<u64>> {
        proptest::collection::btree_set(prop_oneof![0u64..100, any::<u64>()], 0..120)
            .prop_map(|s| s.into_iter().collect())
    }

    proptest! {
        #[test]
        fn paging_page_by_page_lists_every_label_once_in_order(
            labels in sorted_labels(), per_page in 1usize..20, limit in 1usize..30, when_full in any::<bool>()
        ) {
            let rule = if when_full { NextAfter::WhenFull } else { NextAfter::WhenMore };
            let (refs, pages) = paged(&labels, per_page);
            let mut listed: Vec<u64> = Vec::new();
            let mut after = None;
            let mut steps = 0;
            loop {
                let page = list(&refs, &pages, after, limit, rule);
                prop_assert!(page.labels.len() <= limit);
                prop_assert_eq!(&page, &labels_in(&labels, after, limit, rule));
                listed.extend(&page.labels);
                steps += 1;
                match page.next_after {
                    Some(next) => {
                        prop_assert_eq!(Some(&next), page.labels.last());
                        after = Some(next);
                    }
                    None => break,
                }
            }
            prop_assert_eq!(&listed, &labels);
            // Full pages, then one short page (empty when the labels fill the last page and
            // the rule is to name a cursor whenever a page is full).
            let full = labels.len() / limit;
            let extra = match rule {
                NextAfter::WhenFull => 1,
                NextAfter::WhenMore => usize::from(labels.len() % limit != 0 || labels.is_empty()),
            };
            prop_assert_eq!(steps, full + extra);
        }

        #[test]
        fn a_listing_holds_the_labels_after_its_cursor(
            labels in sorted_labels(), per_page in 1usize..20, limit in 0usize..30, after in proptest::option::of(any::<u64>())
        ) {
            let (refs, pages) = paged(&labels, per_page);
            let page = list(&refs, &pages, after, limit, NextAfter::WhenFull);
            let expected: Vec<u64> = labels.iter().copied().filter(|l| after.is_none_or(|a| *l > a)).take(limit).collect();
            prop_assert_eq!(&page.labels, &expected);
            prop_assert_eq!(page.next_after, (limit > 0 && expected.len() == limit).then(|| expected[limit - 1]));
            let more = labels.iter().filter(|l| after.is_none_or(|a| **l > a)).count() > limit;
            let vast = labels_in(&labels, after, limit, NextAfter::WhenMore);
            prop_assert_eq!(&vast.labels, &expected);
            prop_assert_eq!(vast.next_after, (more && limit > 0).then(|| expected[limit - 1]));
        }
    }
}
