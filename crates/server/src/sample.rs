//! The sample's point clouds: hemibrain meshes turned into the voxels their surfaces pass
//! through, plus derived labels (rotated copies, sub-arbors, a copy straddling the origin)
//! whose ids lie above 2^53, so every client meets labels a JS number cannot hold.

/// A triangle mesh.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Mesh {
    /// Vertex positions.
    pub vertices: Vec<[f64; 3]>,
    /// Triangles as vertex indices.
    pub faces: Vec<[u32; 3]>,
}

/// Why an OBJ file could not be read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum SampleError {
    /// A line could not be parsed.
    #[error("OBJ line {line}: {message}")]
    Obj {
        /// 1-based line number.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
}

/// Voxel size (nm) of the bundled sample: about 4 M points, a few MB on disk.
pub(crate) const DEFAULT_VOXEL_NM: f64 = 96.0;

/// Reads the `v` and `f` lines of a Wavefront OBJ (polygons are fan-triangulated; `f`
/// indices may be `i`, `i/t`, `i//n`, `i/t/n` and negative, relative to the end).
pub(crate) fn parse_obj(text: &str) -> Result<Mesh, SampleError> {
    let mut mesh = Mesh {
        vertices: Vec::new(),
        faces: Vec::new(),
    };
    for (n, line) in text.lines().enumerate() {
        let err = |message: String| SampleError::Obj {
            line: n + 1,
            message,
        };
        let mut words = line.split_whitespace();
        match words.next() {
            Some("v") => {
                let mut v = [0f64; 3];
                for slot in &mut v {
                    let w = words
                        .next()
                        .ok_or_else(|| err("a vertex needs x, y and z".into()))?;
                    *slot = w
                        .parse()
                        .ok()
                        .filter(|f: &f64| f.is_finite())
                        .ok_or_else(|| err(format!("{w:?} is not a number")))?;
                }
                mesh.vertices.push(v);
            }
            Some("f") => {
                let count = mesh.vertices.len() as i64;
                let corners = words
                    .map(|w| {
                        let index: i64 = w
                            .split('/')
                            .next()
                            .unwrap_or("")
                            .parse()
                            .map_err(|_| err(format!("{w:?} is not a vertex index")))?;
                        let resolved = if index < 0 { count + index } else { index - 1 };
                        if index == 0 || resolved < 0 || resolved >= count {
                            return Err(err(format!(
                                "vertex {index} does not exist ({count} so far)"
                            )));
                        }
                        Ok(resolved as u32)
                    })
                    .collect::<Result<Vec<u32>, _>>()?;
                if corners.len() < 3 {
                    return Err(err(format!(
                        "a face needs 3 vertices, this one has {}",
                        corners.len()
                    )));
                }
                for k in 1..corners.len() - 1 {
                    mesh.faces.push([corners[0], corners[k], corners[k + 1]]);
                }
            }
            _ => {}
        }
    }
    Ok(mesh)
}

/// The voxels of edge `voxel_nm` that the surface passes through, in units of `voxel_nm`,
/// for a mesh whose coordinates are voxels of `source_voxel_nm`; sorted, distinct.
///
/// Each triangle is sampled on a barycentric grid at most half a voxel apart, so every
/// voxel it crosses by more than a sliver is hit.
pub(crate) fn surface_voxels(mesh: &Mesh, source_voxel_nm: f64, voxel_nm: f64) -> Vec<[i64; 3]> {
    let scale = source_voxel_nm / voxel_nm;
    let mut out: Vec<[i64; 3]> = Vec::new();
    let mut triangle: Vec<[i64; 3]> = Vec::new();
    for face in &mesh.faces {
        let [a, b, c] = face.map(|i| mesh.vertices[i as usize].map(|v| v * scale));
        let ab = [b[0] - a[0], b[1] - a[1], b[2] - a[2]];
        let ac = [c[0] - a[0], c[1] - a[1], c[2] - a[2]];
        let bc = [c[0] - b[0], c[1] - b[1], c[2] - b[2]];
        let longest = [ab, ac, bc]
            .iter()
            .map(|e| (e[0] * e[0] + e[1] * e[1] + e[2] * e[2]).sqrt())
            .fold(0.0, f64::max);
        let steps = (longest * 2.0).ceil().max(1.0) as usize;
        triangle.clear();
        for i in 0..=steps {
            for j in 0..=steps - i {
                let (s, t) = (i as f64 / steps as f64, j as f64 / steps as f64);
                triangle.push([0, 1, 2].map(|k| (a[k] + ab[k] * s + ac[k] * t).floor() as i64));
            }
        }
        triangle.sort_unstable();
        triangle.dedup();
        out.extend_from_slice(&triangle);
    }
    out.sort_unstable();
    out.dedup();
    out
}

/// How a label of the sample is made from one neuron's surface voxels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Derivation {
    /// The neuron itself, under its hemibrain body id.
    Neuron,
    /// Rotated 90° about z (around its centre) and moved beside itself by its extent in x.
    Rotated,
    /// Moved so its centre is the origin: coordinates of both signs.
    Centred,
    /// The part within a third of its extent from its centre.
    Arbor,
}

/// One label of the sample, before its points are made (at 8 nm a neuron has ~70M points,
/// so the builder makes one label at a time).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct SampleLabel {
    /// Its id.
    pub label: u64,
    /// Which neuron (index into the meshes) it is made from.
    pub neuron: usize,
    /// How.
    pub derivation: Derivation,
}

/// The sample's labels for neurons with these body ids, ascending: each neuron, and derived
/// labels above 2^53: `2^53 + 1 + i` is neuron `i` rotated, `u64::MAX - i` its sub-arbor,
/// and `2^53 + 100` neuron 0 centred on the origin.
pub(crate) fn sample_labels(ids: &[u64]) -> Vec<SampleLabel> {
    let mut labels = Vec::new();
    for (neuron, id) in ids.iter().enumerate() {
        let mut add = |label, derivation| {
            labels.push(SampleLabel {
                label,
                neuron,
                derivation,
            })
        };
        add(*id, Derivation::Neuron);
        add((1 << 53) + 1 + neuron as u64, Derivation::Rotated);
        add(u64::MAX - neuron as u64, Derivation::Arbor);
        if neuron == 0 {
            add((1 << 53) + 100, Derivation::Centred);
        }
    }
    labels.sort_by_key(|l| l.label);
    labels
}

impl SampleLabel {
    /// Its points, sorted and distinct, from its neuron's surface voxels (sorted, distinct).
    pub(crate) fn points(&self, neuron: &[[i64; 3]]) -> Vec<[i64; 3]> {
        let (min, max) = bounds(neuron);
        let centre: [i64; 3] = [0, 1, 2].map(|k| (min[k] + max[k]) / 2);
        let extent = (0..3).map(|k| max[k] - min[k]).max().unwrap_or(0);
        match self.derivation {
            Derivation::Neuron => neuron.to_vec(),
            Derivation::Rotated => transformed(neuron, |p| {
                let (dx, dy) = (p[0] - centre[0], p[1] - centre[1]);
                [centre[0] - dy + extent, centre[1] + dx, p[2]]
            }),
            Derivation::Centred => transformed(neuron, |p| [0, 1, 2].map(|k| p[k] - centre[k])),
            Derivation::Arbor => {
                let radius = extent / 3;
                neuron
                    .iter()
                    .copied()
                    .filter(|p| {
                        (0..3).map(|k| (p[k] - centre[k]).pow(2)).sum::<i64>() <= radius * radius
                    })
                    .collect()
            }
        }
    }
}

fn bounds(points: &[[i64; 3]]) -> ([i64; 3], [i64; 3]) {
    let mut min = [i64::MAX; 3];
    let mut max = [i64::MIN; 3];
    for p in points {
        for k in 0..3 {
            min[k] = min[k].min(p[k]);
            max[k] = max[k].max(p[k]);
        }
    }
    (min, max)
}

fn transformed(points: &[[i64; 3]], f: impl Fn(&[i64; 3]) -> [i64; 3]) -> Vec<[i64; 3]> {
    let mut out: Vec<[i64; 3]> = points.iter().map(f).collect();
    out.sort_unstable();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A unit cube (corners 0 and 1) as 12 triangles.
    fn cube(size: f64) -> Mesh {
        let text = "v 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nv 0 0 1\nv 1 0 1\nv 1 1 1\nv 0 1 1\n\
                    f 1 2 3 4\nf 5 6 7 8\nf 1 2 6 5\nf 4 3 7 8\nf 1 4 8 5\nf 2 3 7 6\n";
        let mut mesh = parse_obj(text).unwrap();
        for v in &mut mesh.vertices {
            *v = v.map(|c| c * size);
        }
        mesh
    }

    #[test]
    fn parses_vertices_and_fan_triangulates_faces() {
        let mesh = parse_obj(
            "# c\nv 0 0 0\nv 1 0 0\nv 1 1 0\nv 0 1 0\nvn 0 0 1\nf 1/1/1 2//1 3 4\nf -1 -2 -3\n",
        )
        .unwrap();
        assert_eq!(mesh.vertices.len(), 4);
        assert_eq!(mesh.faces, vec![[0, 1, 2], [0, 2, 3], [3, 2, 1]]);
    }

    #[test]
    fn bad_obj_lines_are_named() {
        for (text, line) in [
            ("v 0 0 0\nv 1 x 0\n", 2),
            ("v 0 0\n", 1),
            ("v 0 0 0\nf 1 2 3\n", 2),
            ("v 0 0 0\nv 1 1 1\nf 1 2\n", 3),
            ("f 0 1 2\n", 1),
        ] {
            let SampleError::Obj { line: got, .. } = parse_obj(text).unwrap_err();
            assert_eq!(got, line, "{text:?}");
        }
    }

    #[test]
    fn a_flat_triangle_covers_the_voxels_under_it() {
        // Right triangle in the plane z = 0.5 with legs of 4 voxels: voxels (x, y) with x + y ≤ 3, plus the
        // diagonal's neighbours it touches exactly at their corners (x + y = 4 on the hypotenuse).
        let mesh = Mesh {
            vertices: vec![[0.0, 0.0, 0.5], [3.99, 0.0, 0.5], [0.0, 3.99, 0.5]],
            faces: vec![[0, 1, 2]],
        };
        let got = surface_voxels(&mesh, 1.0, 1.0);
        let mut expected = Vec::new();
        for x in 0..4 {
            for y in 0..4 {
                if x + y <= 3 {
                    expected.push([x, y, 0]);
                }
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn a_closed_cube_gives_its_shell() {
        // A cube from 0.5 to 8.5: the voxels 0..=8 on each face, nothing inside.
        let mut mesh = cube(8.0);
        for v in &mut mesh.vertices {
            *v = v.map(|c| c + 0.5);
        }
        let got = surface_voxels(&mesh, 1.0, 1.0);
        let mut expected = Vec::new();
        for x in 0..=8i64 {
            for y in 0..=8i64 {
                for z in 0..=8i64 {
                    if [x, y, z].iter().any(|c| *c == 0 || *c == 8) {
                        expected.push([x, y, z]);
                    }
                }
            }
        }
        assert_eq!(got, expected);
    }

    #[test]
    fn scales_from_the_source_voxel_size() {
        let mesh = Mesh {
            vertices: vec![[0.0, 0.0, 0.0], [16.0, 0.0, 0.0], [0.0, 0.0, 0.0]],
            faces: vec![[0, 1, 2]],
        };
        // 16 voxels of 8 nm are 2 voxels of 64 nm, plus the end point's voxel.
        assert_eq!(
            surface_voxels(&mesh, 8.0, 64.0),
            vec![[0, 0, 0], [1, 0, 0], [2, 0, 0]]
        );
    }

    #[test]
    fn derived_labels_are_big_distinct_and_sorted() {
        let ids: Vec<u64> = sample_labels(&[722817260, 754534424])
            .iter()
            .map(|l| l.label)
            .collect();
        assert_eq!(
            ids,
            vec![
                722817260,
                754534424,
                (1 << 53) + 1,
                (1 << 53) + 2,
                (1 << 53) + 100,
                u64::MAX - 1,
                u64::MAX
            ]
        );
    }

    #[test]
    fn derived_points_are_sorted_distinct_and_shaped_as_described() {
        let text = include_str!("../../../data/hemibrain-da1/obj/722817260.obj");
        let neuron = surface_voxels(&parse_obj(text).unwrap(), 8.0, 256.0);
        assert!(neuron.len() > 1000, "{}", neuron.len());
        let made = |derivation| {
            SampleLabel {
                label: 0,
                neuron: 0,
                derivation,
            }
            .points(&neuron)
        };
        assert_eq!(made(Derivation::Neuron), neuron);
        let rotated = made(Derivation::Rotated);
        assert_eq!(
            rotated.len(),
            neuron.len(),
            "a rotation by 90° keeps every voxel"
        );
        assert!(made(Derivation::Centred)
            .iter()
            .any(|p| p.iter().any(|c| *c < 0)));
        let arbor = made(Derivation::Arbor);
        assert!(arbor.len() < neuron.len() && !arbor.is_empty());
        for derivation in [Derivation::Rotated, Derivation::Centred, Derivation::Arbor] {
            assert!(made(derivation).windows(2).all(|w| w[0] < w[1]));
        }
    }
}
