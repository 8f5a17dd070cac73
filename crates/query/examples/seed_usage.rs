//! PoCADuck's README usage example ("Querying Point Clouds"), line for line in Rust, plus
//! its timing example.
//!
//! ```sh
//! cargo run -p pocaduck-edge -- sample /tmp/sample --voxel-nm 256
//! cargo run -p pocaduck-edge-query --example seed_usage -- /tmp/sample
//! ```
//!
//! The dataset is the first argument, else `$POCADUCK_BASE_PATH`: a local edge-layout
//! directory, or an `s3://`, `gs://`, `az://` or `http(s)://` URL (S3 takes its region from
//! `$AWS_REGION`).

use pocaduck_edge_query::{Query, StorageConfig};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let base_path = std::env::args()
        .nth(1)
        .or_else(|| std::env::var("POCADUCK_BASE_PATH").ok())
        .ok_or("usage: seed_usage <base_path> (or set POCADUCK_BASE_PATH)")?;

    // Local storage (or a URL).
    let mut config = StorageConfig::new(base_path);
    config.s3_region = std::env::var("AWS_REGION").ok();

    // Create a query object
    let query = Query::new(config)?;

    // Get all available labels
    let labels = query.get_labels()?;
    println!("Available labels: {labels:?}");

    // The seed asks for label 12345; the sample has other labels, so take the first.
    let label = *labels.first().ok_or("the dataset has no labels")?;

    // Get point count for a label
    let point_count = query.get_point_count(label)?;
    println!("Label {label} has {point_count} points");

    // Get all blocks containing a label
    let blocks = query.get_blocks_for_label(label)?;
    println!("Label {label} is in blocks: {blocks:?}");

    // Get all points for a label (aggregated across all blocks)
    let points = query.get_points(label)?;
    println!(
        "Retrieved {} points for label {label} (shape {:?})",
        points.len(),
        points.shape()
    );

    // Analyze a query: timing=True (the second read of a label comes from the cache;
    // use_cache=False reads it again)
    let (_, timing) = query.get_points_timed(label)?;
    println!("{timing}");
    let (points, timing) = query.get_points_with(label, false)?;
    println!("{timing}");
    println!(
        "cache hit: {}, {} points, {} bytes fetched in {} requests, total {:.4} s",
        timing.cache_hit,
        points.len(),
        timing.bytes_fetched,
        timing.requests,
        timing.total_time
    );

    // Close the query connection when done
    query.close();
    Ok(())
}
