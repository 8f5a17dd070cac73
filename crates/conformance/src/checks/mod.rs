//! The checks, by concern. Each takes an [`Api`](crate::Api) and asserts inside.
//!
//! The checks of [`listing`], [`points`], [`answers`], [`files`], [`errors`] and
//! [`vastdb_reply`] hold for any
//! host over a dataset like the sample (VastDB tables included: where a table's streamed
//! answers cannot know counts or bounds up front, the checks ask for them only of the edge
//! layout). Those of [`host`] check what a host was configured with (limits, CORS origins,
//! broken and coarse datasets beside the checked one), which they take as arguments.

pub mod answers;
pub mod errors;
pub mod files;
pub mod host;
pub mod listing;
pub mod points;
pub mod vastdb_reply;
