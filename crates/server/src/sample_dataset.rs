//! The bundled sample: five real hemibrain neurons (Scheffer et al. 2020, CC-BY 4.0),
//! voxelised and written as an edge-layout dataset.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressStyle};
use pocaduck_edge_core::manifest::FORMAT_VERSION;
use pocaduck_edge_core::write::{DatasetWriter, WriterOptions};
use pocaduck_edge_core::{Manifest, PointCloud};

use crate::import::DirSink;
use crate::output_dir::write_aside;
use crate::sample::{parse_obj, sample_labels, surface_voxels, Mesh, DEFAULT_VOXEL_NM};

/// The meshes, compiled in so the binary needs no data files: (body id, OBJ text).
const MESHES: [(u64, &str); 5] = [
    (
        722817260,
        include_str!("../../../data/hemibrain-da1/obj/722817260.obj"),
    ),
    (
        754534424,
        include_str!("../../../data/hemibrain-da1/obj/754534424.obj"),
    ),
    (
        754538881,
        include_str!("../../../data/hemibrain-da1/obj/754538881.obj"),
    ),
    (
        1734350788,
        include_str!("../../../data/hemibrain-da1/obj/1734350788.obj"),
    ),
    (
        1734350908,
        include_str!("../../../data/hemibrain-da1/obj/1734350908.obj"),
    ),
];

/// Hemibrain voxels are 8 nm.
const SOURCE_VOXEL_NM: f64 = 8.0;

/// Recorded in the sample's manifest.
const ATTRIBUTION: &str = "Five DA1 projection neurons of the Janelia FlyEM hemibrain connectome (surface voxels of \
their meshes, plus derived labels), CC-BY 4.0. Cite: Louis K. Scheffer et al., \"A connectome and analysis of the adult \
Drosophila central brain\", eLife 2020;9:e57443, doi:10.7554/eLife.57443.";

/// The sample's zstd level: it is built once and served often, so it is written small
/// (0.67 B/point at 96 nm against 0.88 at level 3) at a quarter more build time.
pub(crate) const ZSTD_LEVEL: i32 = 14;
/// The bundled sample's `--coarse-points`: its five neurons (558K to 650K points each) get
/// a stored coarse level of 65K to 130K points, which the viewer draws first.
pub(crate) const COARSE_POINTS: u64 = 1 << 16;

/// Writes the sample at `voxel_nm` into `out` (written aside, then renamed into place),
/// tuned by `options` (its voxel size and attribution are the sample's).
pub(crate) fn build(out: &Path, voxel_nm: f64, options: WriterOptions) -> anyhow::Result<Manifest> {
    anyhow::ensure!(
        voxel_nm.is_finite() && voxel_nm > 0.0,
        "--voxel-nm must be a positive number"
    );
    let meshes = MESHES
        .iter()
        .map(|(id, text)| Ok((*id, parse_obj(text).with_context(|| format!("mesh {id}"))?)))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let labels = sample_labels(&meshes.iter().map(|(id, _)| *id).collect::<Vec<_>>());
    let bar = if std::io::stderr().is_terminal() {
        ProgressBar::new(labels.len() as u64)
    } else {
        ProgressBar::hidden()
    };
    bar.set_style(
        ProgressStyle::with_template("voxelising at {msg} nm and writing [{bar:40}] {pos}/{len}")
            .expect("a valid template"),
    );
    bar.set_message(voxel_nm.to_string());
    write_aside(out, |partial| {
        let options = WriterOptions {
            voxel_size_nm: Some(vec![voxel_nm; 3]),
            attribution: Some(ATTRIBUTION.into()),
            ..options.clone()
        };
        let mut writer = DatasetWriter::new(
            DirSink::new(partial),
            vec!["x".into(), "y".into(), "z".into()],
            options,
        )?;
        let mut voxels = VoxelCache::default();
        for l in labels {
            let points = l.points(voxels.get(&meshes, l.neuron, voxel_nm));
            if !points.is_empty() {
                let values = points.into_iter().flatten().collect();
                writer.push_label(l.label, PointCloud::new(3, values)?, &[])?;
            }
            bar.inc(1);
        }
        bar.finish_and_clear();
        Ok(writer.finish()?)
    })
}

/// Neurons' surface voxels, kept while they are small: at fine voxel sizes one neuron at a
/// time, so memory stays near one neuron's points and its largest derived label.
#[derive(Default)]
struct VoxelCache {
    neurons: HashMap<usize, Vec<[i64; 3]>>,
    points: usize,
}

impl VoxelCache {
    /// Points kept across neurons (about 0.5 GB).
    const BUDGET_POINTS: usize = 20_000_000;

    fn get(&mut self, meshes: &[(u64, Mesh)], neuron: usize, voxel_nm: f64) -> &[[i64; 3]] {
        if !self.neurons.contains_key(&neuron) {
            if self.points >= Self::BUDGET_POINTS {
                self.neurons.clear();
                self.points = 0;
            }
            let voxels = surface_voxels(&meshes[neuron].1, SOURCE_VOXEL_NM, voxel_nm);
            if self.points + voxels.len() > Self::BUDGET_POINTS {
                self.neurons.clear();
                self.points = 0;
            }
            self.points += voxels.len();
            self.neurons.insert(neuron, voxels);
        }
        &self.neurons[&neuron]
    }
}

/// The default sample, built on first use under the user's cache directory.
pub(crate) fn bundled_sample() -> anyhow::Result<PathBuf> {
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(std::env::temp_dir);
    let dir = cache
        .join("pocaduck-edge")
        .join(format!(
            "sample-v{}-format{FORMAT_VERSION}-{}nm-zstd{ZSTD_LEVEL}-coarse{COARSE_POINTS}",
            env!("CARGO_PKG_VERSION"),
            DEFAULT_VOXEL_NM
        ))
        .join("hemibrain-da1");
    if !dir.join("manifest.json").exists() {
        std::fs::create_dir_all(dir.parent().expect("joined above"))?;
        eprintln!("building the sample dataset in {}", dir.display());
        let options = WriterOptions {
            zstd_level: ZSTD_LEVEL,
            coarse_points: COARSE_POINTS,
            ..WriterOptions::default()
        };
        build(&dir, DEFAULT_VOXEL_NM, options)?;
    }
    Ok(dir)
}
