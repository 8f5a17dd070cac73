//! Driving a query to completion: the `GET ?data` request with its split, sub-split and
//! resume headers, re-sent until every sub-split reports [`INVALID_ROW_ID`], and bounded: a
//! query whose replies stop making progress is an error, not an endless loop.

use bytes::Bytes;
use http::Method;

use crate::deframe::{Event, INVALID_ROW_ID};
use crate::error::{Error, Result};
use crate::request::{python_bool, Request, TablePath, API_VERSION, CLIENT_NAME};

/// Rows per sub-split per request unless set (the SDK's `limit_rows_per_sub_split`).
pub const DEFAULT_LIMIT_ROWS: u64 = 131_072;

/// How a query is split and paged (the SDK's `QueryConfig`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuerySettings {
    /// This split's index (`tabular-split`'s first value).
    pub split_id: u32,
    /// The number of splits the query is cut into.
    pub num_splits: u32,
    /// Row groups per sub-split (the SDK's default is 8).
    pub row_groups_per_sub_split: u32,
    /// Sub-splits the server works on in parallel, one reply stream each.
    pub num_sub_splits: u32,
    /// Rows per sub-split per request (`tabular-limit-rows`), which bounds a round.
    pub limit_rows: u64,
    /// `tabular-enable-sorted-projections`.
    pub sorted_projections: bool,
    /// The most replies in a row that may make no progress before the query fails.
    pub max_stalled_replies: u32,
}

impl Default for QuerySettings {
    fn default() -> Self {
        Self {
            split_id: 0,
            num_splits: 1,
            row_groups_per_sub_split: 8,
            num_sub_splits: 4,
            limit_rows: DEFAULT_LIMIT_ROWS,
            sorted_projections: true,
            max_stalled_replies: 3,
        }
    }
}

/// Where each sub-split of a query resumes, and whether replies still make progress: what
/// a reader of replies keeps between pages, whoever sends the requests.
#[derive(Clone, Debug)]
pub struct Progress {
    resume: Vec<u64>,
    max_stalled_replies: u32,
    advanced: bool,
    stalled: u32,
}

impl Progress {
    /// Every sub-split of `settings` from its start.
    pub fn new(settings: &QuerySettings) -> Self {
        let sub_splits = settings.num_sub_splits.max(1) as usize;
        Self {
            resume: vec![0; sub_splits],
            max_stalled_replies: settings.max_stalled_replies,
            advanced: false,
            stalled: 0,
        }
    }

    /// Progress resumed at `resume`, one row id per sub-split of `settings` (as
    /// [`Progress::resume_text`] writes them, comma-separated).
    pub fn resumed(settings: &QuerySettings, resume: &str) -> Result<Self> {
        let mut progress = Self::new(settings);
        let values: Vec<&str> = resume.split(',').collect();
        if values.len() != progress.resume.len() {
            return Err(Error::InvalidResume(format!(
                "resume names {} sub-splits, not {}",
                values.len(),
                progress.resume.len()
            )));
        }
        for (slot, text) in progress.resume.iter_mut().zip(values) {
            *slot = text
                .parse::<u64>()
                .ok()
                .filter(|&r| r <= INVALID_ROW_ID)
                .ok_or_else(|| {
                    Error::InvalidResume(format!(
                        "resume row id {text:?} is not an integer from 0 to 2^48-1"
                    ))
                })?;
        }
        Ok(progress)
    }

    /// Where each sub-split resumes, comma-separated (the `resume` of the next page).
    pub fn resume_text(&self) -> String {
        let texts: Vec<String> = self.resume.iter().map(u64::to_string).collect();
        texts.join(",")
    }

    /// Where each sub-split resumes.
    pub fn resume(&self) -> &[u64] {
        &self.resume
    }

    /// Whether every sub-split has finished.
    pub fn is_done(&self) -> bool {
        self.resume.iter().all(|&r| r == INVALID_ROW_ID)
    }

    /// Starts a reply.
    pub fn begin_reply(&mut self) {
        self.advanced = false;
    }

    /// Records a decoder event: a finished round moves its sub-split's resume point.
    pub fn observe(&mut self, event: &Event) -> Result<()> {
        if let Event::RoundDone {
            sub_split,
            next_row_id,
        } = *event
        {
            let resume =
                self.resume
                    .get_mut(sub_split as usize)
                    .ok_or_else(|| Error::Malformed {
                        what: "query reply",
                        reason: format!(
                            "a round for sub-split {sub_split}, which was not requested"
                        ),
                    })?;
            if next_row_id > INVALID_ROW_ID {
                return Err(Error::Malformed {
                    what: "query reply",
                    reason: format!("next row id {next_row_id} is beyond 2^48-1"),
                });
            }
            if *resume != next_row_id {
                *resume = next_row_id;
                self.advanced = true;
            }
        }
        Ok(())
    }

    /// Ends a reply: fails once `max_stalled_replies` replies in a row moved no sub-split.
    pub fn end_reply(&mut self) -> Result<()> {
        if self.advanced || self.is_done() {
            self.stalled = 0;
            return Ok(());
        }
        self.stalled += 1;
        if self.stalled >= self.max_stalled_replies {
            return Err(Error::NoProgress(format!(
                "{} replies in a row moved no sub-split",
                self.stalled
            )));
        }
        Ok(())
    }
}

/// The requests of one split of a query, each resuming where the replies before it ended.
#[derive(Clone, Debug)]
pub struct QueryCursor {
    table: TablePath,
    body: Bytes,
    settings: QuerySettings,
    progress: Progress,
    requests: u64,
}

impl QueryCursor {
    /// A cursor for the query `body` (see [`crate::query::encode`]) on `table`.
    pub fn new(table: TablePath, body: Bytes, settings: QuerySettings) -> Self {
        Self::resuming(table, body, settings, Progress::new(&settings))
    }

    /// A cursor whose next request resumes at `progress`.
    pub fn resuming(
        table: TablePath,
        body: Bytes,
        settings: QuerySettings,
        progress: Progress,
    ) -> Self {
        Self {
            table,
            body,
            settings,
            progress,
            requests: 0,
        }
    }

    /// The settings.
    pub fn settings(&self) -> &QuerySettings {
        &self.settings
    }

    /// Whether every sub-split has finished.
    pub fn is_done(&self) -> bool {
        self.progress.is_done()
    }

    /// Requests sent so far.
    pub fn requests(&self) -> u64 {
        self.requests
    }

    /// The next request inside transaction `txid`, or `None` when the query is complete.
    pub fn next_request(&mut self, txid: u64) -> Option<Request> {
        if self.is_done() {
            return None;
        }
        self.requests += 1;
        self.progress.begin_reply();
        let s = &self.settings;
        let mut headers = vec![
            ("tabular-txid".to_owned(), txid.to_string()),
            ("tabular-api-version-id".to_owned(), API_VERSION.to_owned()),
            ("tabular-client-name".to_owned(), CLIENT_NAME.to_owned()),
            (
                "tabular-split".to_owned(),
                format!(
                    "{},{},{}",
                    s.split_id, s.num_splits, s.row_groups_per_sub_split
                ),
            ),
            (
                "tabular-num-of-subsplits".to_owned(),
                self.progress.resume.len().to_string(),
            ),
            ("tabular-request-format".to_owned(), "string".to_owned()),
            ("tabular-response-format".to_owned(), "string".to_owned()),
            (
                "tabular-enable-sorted-projections".to_owned(),
                python_bool(s.sorted_projections).to_owned(),
            ),
        ];
        if s.limit_rows > 0 {
            headers.push(("tabular-limit-rows".to_owned(), s.limit_rows.to_string()));
        }
        for (i, resume) in self.progress.resume.iter().enumerate() {
            headers.push((format!("tabular-start-row-id-{i}"), format!("{i},{resume}")));
        }
        Some(Request {
            method: Method::GET,
            path: self.table.path(),
            query: "data".to_owned(),
            headers,
            body: self.body.clone(),
        })
    }

    /// Records a decoder event: a finished round moves its sub-split's resume point.
    pub fn observe(&mut self, event: &Event) -> Result<()> {
        self.progress.observe(event)
    }

    /// Ends a reply: fails once `max_stalled_replies` replies in a row moved no sub-split.
    pub fn end_reply(&mut self) -> Result<()> {
        self.progress.end_reply().map_err(|e| match e {
            Error::NoProgress(m) => Error::NoProgress(format!(
                "{m} of {} (after {} requests)",
                self.table, self.requests
            )),
            other => other,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cursor(sub_splits: u32) -> QueryCursor {
        let settings = QuerySettings {
            num_sub_splits: sub_splits,
            ..QuerySettings::default()
        };
        let table = TablePath::new("b", "s", "t").unwrap();
        QueryCursor::new(table, Bytes::from_static(b"q"), settings)
    }

    fn round(sub_split: u32, next_row_id: u64) -> Event {
        Event::RoundDone {
            sub_split,
            next_row_id,
        }
    }

    #[test]
    fn resumes_each_sub_split_where_its_last_round_ended() {
        let mut c = cursor(2);
        let first = c.next_request(7).unwrap();
        assert_eq!(first.header_value("tabular-start-row-id-1"), Some("1,0"));
        assert_eq!(first.header_value("tabular-txid"), Some("7"));
        c.observe(&round(0, 5)).unwrap();
        c.observe(&round(1, INVALID_ROW_ID)).unwrap();
        c.end_reply().unwrap();
        let second = c.next_request(7).unwrap();
        assert_eq!(second.header_value("tabular-start-row-id-0"), Some("0,5"));
        assert_eq!(
            second.header_value("tabular-start-row-id-1"),
            Some("1,281474976710655")
        );
        c.observe(&round(0, INVALID_ROW_ID)).unwrap();
        c.end_reply().unwrap();
        assert!(c.is_done() && c.next_request(7).is_none());
        assert_eq!(c.requests(), 2);
    }

    #[test]
    fn replies_that_make_no_progress_end_the_query() {
        let mut c = cursor(1);
        let mut outcome = Ok(());
        for _ in 0..10 {
            assert!(c.next_request(1).is_some());
            c.observe(&round(0, 0)).unwrap();
            outcome = c.end_reply();
            if outcome.is_err() {
                break;
            }
        }
        assert!(matches!(outcome, Err(Error::NoProgress(_))));
        assert_eq!(c.requests(), 3);
    }

    #[test]
    fn progress_resumes_from_its_own_text() {
        let settings = QuerySettings {
            num_sub_splits: 2,
            ..QuerySettings::default()
        };
        let mut p = Progress::new(&settings);
        assert_eq!(p.resume_text(), "0,0");
        p.begin_reply();
        p.observe(&round(1, 9)).unwrap();
        p.end_reply().unwrap();
        let again = Progress::resumed(&settings, &p.resume_text()).unwrap();
        assert_eq!(again.resume(), &[0, 9]);
        let mut c = QueryCursor::resuming(
            TablePath::new("b", "s", "t").unwrap(),
            Bytes::from_static(b"q"),
            settings,
            again,
        );
        let request = c.next_request(1).unwrap();
        assert_eq!(request.header_value("tabular-start-row-id-1"), Some("1,9"));
        let done = format!("{INVALID_ROW_ID},{INVALID_ROW_ID}");
        assert!(Progress::resumed(&settings, &done).unwrap().is_done());
    }

    #[test]
    fn resume_points_outside_the_sub_splits_are_refused() {
        let settings = QuerySettings {
            num_sub_splits: 2,
            ..QuerySettings::default()
        };
        let beyond = format!("0,{}", INVALID_ROW_ID + 1);
        for bad in ["", "0", "0,0,0", "0,x", "-1,0", "0, 1", beyond.as_str()] {
            let e = Progress::resumed(&settings, bad).unwrap_err();
            assert!(matches!(e, Error::InvalidResume(_)), "{bad:?}: {e}");
        }
    }

    #[test]
    fn rounds_for_unknown_sub_splits_are_errors() {
        let mut c = cursor(1);
        c.next_request(1);
        assert!(c.observe(&round(3, 1)).is_err());
        assert!(c.observe(&round(0, INVALID_ROW_ID + 1)).is_err());
    }
}
