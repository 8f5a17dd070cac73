//! The read API's conformance suite, as a library: every check a host serving the API must
//! pass, run against any [`Target`].
//!
//! Each check is a public `async fn` in [`checks`] taking an [`Api`] (a target and one of its
//! datasets) and whatever else it needs (a host's configured limits, its log, a second
//! dataset), asserting inside: it panics on the first difference, naming it. A runner calls
//! them from its own `#[test]`s, one test per check, as object_store's `integration` module
//! is used by each store's tests.
//!
//! Two targets:
//!
//! * [`HttpTarget`]: a base URL, over HTTP (reqwest). Any host: the native server, a
//!   Worker under `wrangler dev`, a deployment.
//! * [`InProcess`]: a [`pocaduck_edge_proxy::Service`] handed requests directly, with the
//!   in-memory IO of [`memory`] ([`memory::MemoryStore`], [`memory::CapturedLog`]) and
//!   [`scripted`] ([`scripted::ScriptedUpstream`], VastDB's faults without a socket).
//!
//! # Running the suite against any base URL
//!
//! The server's test binary runs every check over HTTP. Without settings it starts
//! `pocaduck-edge serve` on a loopback port over a sample it builds; with
//! `POCADUCK_EDGE_BASE_URL` and `POCADUCK_EDGE_DATASET` it checks that host and dataset
//! instead (the checks that need the local server's configuration, broken datasets or
//! coarse levels are skipped):
//!
//! ```sh
//! POCADUCK_EDGE_BASE_URL=http://127.0.0.1:8787 POCADUCK_EDGE_DATASET=hemibrain-da1 \
//!   cargo test -p pocaduck-edge --test tests api::
//! ```
//!
//! The dataset should be the sample (`pocaduck-edge sample`, any voxel size) or one like it:
//! at least two labels, one above 2^53, labels of hundreds of points or more spread over
//! space. From a test of one's own:
//!
//! ```no_run
//! use pocaduck_edge_conformance::{checks, Api, HttpTarget};
//!
//! # async fn run() {
//! let target = HttpTarget::new("http://127.0.0.1:8787");
//! let api = Api::new(&target, "hemibrain-da1");
//! checks::listing::lists_the_dataset(&api).await;
//! checks::points::every_format_carries_the_same_points(&api).await;
//! # }
//! ```
//!
//! `crates/conformance/tests/in_process` runs the same checks in-process over datasets
//! written into memory, and the VastDB fault paths over a scripted upstream.

pub mod api;
pub mod checks;
pub mod decode;
pub mod memory;
pub mod scripted;
pub mod target;

pub use api::{assert_error, assert_logged_error, json_body, Api, Response, ServerLog};

/// Calls `$runner!` with every check that holds for any host and takes an [`Api`] alone, as
/// `module::check` paths (the runner's scope imports [`checks`]' modules). Each runner
/// makes its tests from this one list, so a check added here runs everywhere:
///
/// ```text
/// macro_rules! run {
///     ($($module:ident::$check:ident),* $(,)?) => {$(
///         #[tokio::test]
///         async fn $check() { $module::$check(&api()).await; }
///     )*};
/// }
/// pocaduck_edge_conformance::any_host_checks!(run);
/// ```
#[macro_export]
macro_rules! any_host_checks {
    ($runner:ident) => {
        $runner!(
            listing::lists_the_dataset,
            listing::labels_page_in_ascending_order_and_include_big_ids,
            listing::counts_and_bounds_match_the_points,
            points::every_format_carries_the_same_points,
            points::points_come_in_pocaducks_xyz_order,
            points::limit_and_bbox_select_subsets,
            points::many_labels_in_one_post,
            answers::rows_answers_of_one_whole_label_name_its_bounds,
            answers::parquet_answers_of_one_label_name_their_bounds,
            answers::answers_give_their_point_count_before_the_points_when_known,
            errors::bad_labels_are_400,
            errors::unknown_things_are_404,
            errors::bad_options_are_400,
            files::files_serve_ranges_etags_and_nothing_outside_the_dataset,
            vastdb_reply::reply_pages_carry_each_labels_points,
            vastdb_reply::reply_pages_refuse_what_is_not_a_page,
        );
    };
}
pub use target::{HttpTarget, InProcess, Target};
