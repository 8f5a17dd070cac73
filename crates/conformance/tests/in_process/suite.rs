//! Every check of the suite over the service in-process ([`fixture::host`]).

use pocaduck_edge_conformance::checks::{
    answers, errors, files, host, listing, points, vastdb_reply,
};
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

pocaduck_edge_conformance::any_host_checks!(checks);

// The in-process host stores its files whole, as the local server does.
checks!(files::parquet_answers_copy_the_labels_own_row_groups_as_stored);

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
