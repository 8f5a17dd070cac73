//! Every check of the suite over the service in-process ([`fixture::host`]).

use pocaduck_edge_conformance::checks::{answers, errors, files, host, listing, points};
use pocaduck_edge_conformance::Api;

use crate::fixture::{self, COARSE_POINTS, DATASET, LIMITS, ORIGIN};

/// The checked dataset of the in-process host.
fn api() -> Api<'static> {
    Api::new(&fixture::host().target, DATASET)
}

/// One test per check that takes the API alone.
macro_rules! checks {
    ($($module:ident::$check:ident),* $(,)?) => {$(
        #[tokio::test]
        async fn $check() {
            $module::$check(&api()).await;
        }
    )*};
}

checks!(
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
    files::parquet_answers_copy_the_labels_own_row_groups_as_stored,
);

#[tokio::test]
async fn the_columns_shape_carries_the_same_points_as_rows() {
    // The writer stores coordinates that fit as int32.
    let stored = Some(arrow_schema::DataType::Int32);
    points::the_columns_shape_carries_the_same_points_as_rows(&api(), stored).await;
}

#[tokio::test]
async fn cors_allows_the_configured_origin_without_preflight() {
    host::cors_allows_the_configured_origin_without_preflight(&api(), ORIGIN).await;
}

#[tokio::test]
async fn limits_answer_413_naming_the_limit() {
    host::limits_answer_413_naming_the_limit(&api(), &LIMITS, ORIGIN).await;
}

#[tokio::test]
async fn broken_datasets_answer_503_while_the_others_serve() {
    let log = &*fixture::host().log;
    host::broken_datasets_answer_503_while_the_others_serve(&api(), log).await;
}

#[tokio::test]
async fn levels_of_detail_of_big_labels_read_their_coarse_level() {
    let coarse = api().dataset_named("coarse");
    host::levels_of_detail_of_big_labels_read_their_coarse_level(&coarse, COARSE_POINTS).await;
}
