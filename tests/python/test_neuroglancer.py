"""Every dataset as a neuroglancer precomputed annotation source, read by neuroglancer's own
code: `neuroglancer.read_precomputed_annotations` (over tensorstore's HTTP kvstore) against
`pocaduck-edge serve`, and `neuroglancer.write_annotations.AnnotationWriter` as the
reference of the bytes.

Datasets: the bundled sample (`pocaduck-edge sample`), the PoCADuck reference set (written
by the real `pocaduck`, imported), and the same reference set loaded into a VastDB table on
`vastdb-emulator`. Every label's related annotations must equal `get_points` (PoCADuck's
own for the reference set, the API's for the sample) as a set of points.

Run: tests/python/setup_venv.sh && POCADUCK_EDGE_BIN=... VASTDB_EMULATOR_BIN=... \
     .venv/bin/python -m pytest tests/python/test_neuroglancer.py
"""

import collections
import contextlib
import io
import json
import os
import subprocess

import numpy as np
import pytest
import requests
from neuroglancer import read_precomputed_annotations as rpa
from neuroglancer import write_annotations

from edge_server import serve
from pocaduck_fixture import LABELS

BIN = os.environ.get("POCADUCK_EDGE_BIN")
EMULATOR_BIN = os.environ.get("VASTDB_EMULATOR_BIN")
pytestmark = pytest.mark.skipif(
    not (BIN and EMULATOR_BIN), reason="set POCADUCK_EDGE_BIN and VASTDB_EMULATOR_BIN"
)
# Labels over this many points are decoded by the reader into light tuples instead of its
# PointAnnotation objects (about 30 µs each): the bytes, the count and size checks and the
# ids are still the reader's own.
LIGHT_ABOVE = 100_000


@pytest.fixture(scope="module")
def edge(sources, tmp_path_factory):
    """The sample and the imported reference set, served; yields the base URL."""
    out = tmp_path_factory.mktemp("edge")
    subprocess.run([BIN, "sample", str(out / "sample")], check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    subprocess.run([BIN, "import", sources[0], str(out / "raw")], check=True, timeout=300,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    with serve(BIN, ["--data", str(out / "sample"), "--data", str(out / "raw")]) as url:
        yield url


@pytest.fixture(scope="module")
def vast(emulator, sources):
    """The reference set loaded into a columnar VastDB table, served; yields the base URL."""
    env = {**os.environ, "VASTDB_ACCESS_KEY": emulator.access, "VASTDB_SECRET_KEY": emulator.secret}
    done = subprocess.run(
        [BIN, "vastdb", "load", sources[0], "--endpoint", emulator.url, "--bucket", "pocaduck",
         "--schema", "pocaduck/ng", "--table", "columnar", "--layout", "columnar"],
        env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    args = ["--vastdb-endpoint", emulator.url, "--vastdb-bucket", "pocaduck",
            "--vastdb-schema", "pocaduck/ng", "--vastdb-table", "columnar",
            "--vastdb-layout", "columnar"]
    with serve(BIN, args, env=env) as url:
        yield url


@pytest.fixture
def servers(edge, vast):
    """The base URL of each dataset by name."""
    return {"sample": f"{edge}/v1/datasets/sample", "raw": f"{edge}/v1/datasets/raw",
            "columnar": f"{vast}/v1/datasets/columnar"}


def source(base):
    return f"{base}/neuroglancer/"


def reader(base):
    return rpa.AnnotationReader(source(base))


def labels_of(base):
    out, after = [], None
    while True:
        page = requests.get(f"{base}/labels?limit=10000" + (f"&after={after}" if after else ""),
                            timeout=60).json()
        out += page["labels"]
        after = page["next_after"]
        if after is None:
            return out


def api_points(base, label, query=""):
    r = requests.get(f"{base}/labels/{label}/points?format=npy{query}", timeout=300)
    assert r.status_code == 200, r.text
    return np.load(io.BytesIO(r.content))


def as_set(points):
    return {tuple(int(v) for v in row) for row in points}


Light = collections.namedtuple("Light", ["point", "id"])


@contextlib.contextmanager
def light_points():
    """The reader decodes points into `Light(point, id)` tuples instead of PointAnnotations."""
    constructors = rpa._ANNOTATION_TYPE_CONSTRUCTORS
    point = constructors["point"]
    constructors["point"] = lambda geom, rank, props, segments, id: Light(geom, id)
    try:
        yield
    finally:
        constructors["point"] = point


def related(r, label, count):
    """The related annotations of `label` as the reader decodes them: positions (N x D
    float32) and ids (uint64)."""
    maker = light_points() if count > LIGHT_ABOVE else contextlib.nullcontext()
    with maker:
        annotations = r.relationships["segment"][int(label)]
    rank = r.coordinate_space.rank
    positions = np.array([a.point for a in annotations], dtype=np.float32).reshape(-1, rank)
    return positions, np.array([int(a.id) for a in annotations], dtype=np.uint64)


def rows(points):
    """Points as distinct int64 rows, sorted: a set of points to compare."""
    return np.unique(np.asarray(points).astype(np.int64).reshape(len(points), -1), axis=0)


@pytest.mark.parametrize("ds", ["sample", "raw", "columnar"])
def test_info_is_a_coordinate_space_with_point_annotations_related_to_segments(servers, ds):
    base = servers[ds]
    r = reader(base)
    summary = requests.get(base, timeout=60).json()
    assert r.annotation_type == "point"
    assert list(r.coordinate_space.names) == summary["dims"]
    voxel = summary.get("voxel_size_nm") or [1.0] * len(summary["dims"])
    assert np.allclose(r.coordinate_space.scales, np.array(voxel) * 1e-9)
    assert list(r.coordinate_space.units) == ["m"] * len(voxel)
    assert list(r.relationships) == ["segment"] and r.by_id
    assert r.properties == []
    lower, upper = np.array(r.lower_bound), np.array(r.upper_bound)
    if "bbox" in summary:
        assert (lower == summary["bbox"]["min"]).all()
        assert (upper > summary["bbox"]["max"]).all()  # the upper bound is exclusive
    levels = r.metadata["spatial"]
    assert levels[0]["grid_shape"] == [1] * len(lower)
    for i, level in enumerate(levels):
        assert np.allclose(np.array(level["grid_shape"]) * level["chunk_size"], upper - lower), i
        assert level["limit"] >= 1
        if i:
            assert np.allclose(np.array(levels[i - 1]["chunk_size"]) / level["chunk_size"], 2)


@pytest.mark.parametrize("ds", ["sample", "raw", "columnar"])
def test_every_labels_related_annotations_are_its_points(servers, queries, ds):
    base = servers[ds]
    r = reader(base)
    labels = labels_of(base)
    if ds != "sample":
        assert sorted(int(l) for l in labels) == sorted(LABELS)
    every_id = []
    for label in labels:
        if ds == "sample":
            expected = rows(api_points(base, label))
        else:
            expected = rows(queries["raw"].get_points(int(label)))
        positions, ids = related(r, label, len(expected))
        # float32 positions: exact below 2^24, which every coordinate here is.
        assert len(positions) == len(expected), label
        assert np.array_equal(rows(positions), expected), label
        every_id.append(ids)
    every_id = np.concatenate(every_id)
    assert len(np.unique(every_id)) == len(every_id), "an annotation id repeats"
    # Labels above 2^53 are keys and ids as they are (not through a float).
    assert any(int(l) > 2**53 for l in labels)


@pytest.mark.parametrize("ds", ["sample", "raw", "columnar"])
def test_by_id_is_the_point_related_to_its_label(servers, ds):
    base = servers[ds]
    r = reader(base)
    for label in labels_of(base)[-3:]:
        positions, ids = related(r, label, LIGHT_ABOVE + 1)
        for at in sorted({0, len(ids) // 2, len(ids) - 1}):
            a = r.by_id[int(ids[at])]
            assert list(a.point) == list(positions[at]), (label, at)
            assert [[int(s) for s in segs] for segs in a.segments] == [[int(label)]]
            assert a.id == str(ids[at])
    with pytest.raises(KeyError):
        r.by_id[2**63 + 12345]


def box_points(base, labels, lower, upper):
    """Every point of every label inside the inclusive box, through the points API."""
    out = collections.Counter()
    bbox = ",".join(str(int(v)) for v in [*lower, *upper])
    for label in labels:
        out.update(as_set(api_points(base, label, f"&bbox={bbox}")))
    return out


@pytest.mark.parametrize("ds", ["sample", "raw", "columnar"])
def test_a_boxs_spatial_query_returns_every_point_inside_it(servers, ds):
    base = servers[ds]
    r = reader(base)
    labels = labels_of(base)
    lower, upper = np.array(r.lower_bound), np.array(r.upper_bound)
    # A box around a point of the first label, a tenth of the dataset wide.
    first = api_points(base, labels[0], "&limit=1")[0]
    half = np.maximum((upper - lower) // 20, 2)
    lo, hi = first - half, first + half
    with light_points():
        got = list(r.get_within_spatial_bounds(lower_bound=lo, upper_bound=hi))
    expected = box_points(base, labels, lo, hi)
    assert sum(expected.values()) > 0
    assert collections.Counter(tuple(int(v) for v in a.point) for a in got) == expected
    ids = [a.id for a in got]
    assert len(set(ids)) == len(ids), "a point in two levels or cells"


def test_every_cell_of_every_level_holds_at_most_its_limit(servers):
    """On the reference set: the levels partition the points, no cell over its limit."""
    base = servers["raw"]
    r = reader(base)
    total, ids = 0, set()
    with light_points():
        for level, index in enumerate(r.spatial):
            meta = index.metadata
            for cell in np.ndindex(*meta["grid_shape"]):
                try:
                    got = index[cell]
                except KeyError:
                    got = []
                assert len(got) <= meta["limit"], (level, cell)
                total += len(got)
                ids |= {a.id for a in got}
    assert total == len(ids) == sum(len(as_set(api_points(base, l))) for l in labels_of(base))


def fields(a):
    """An annotation's fields as plain values: id, position, properties, segments."""
    segments = [[int(s) for s in segs] for segs in (a.segments or [])]
    return (str(a.id), [float(v) for v in a.point], [float(p) for p in a.props], segments)


def written_by_neuroglancer(tmp_path, r, label_points):
    """The same annotations written by neuroglancer's `AnnotationWriter`: (path, reader)."""
    writer = write_annotations.AnnotationWriter(
        coordinate_space=r.coordinate_space, annotation_type="point", relationships=["segment"])
    for label, (positions, ids) in label_points.items():
        for p, i in zip(positions, ids):
            writer.add_point(p, id=i, segment=label)
    writer.write(tmp_path)
    return tmp_path, rpa.AnnotationReader(f"file://{tmp_path}/")


@pytest.mark.parametrize("ds", ["raw", "columnar"])
def test_our_bytes_are_the_writers_where_the_format_fixes_them(servers, tmp_path, ds):
    base = servers[ds]
    ours = reader(base)
    chosen = [7, 2**53 + 1, 2**63 - 5]
    label_points = {label: [list(map(list, p)) if k == 0 else [int(i) for i in p]
                            for k, p in enumerate(related(ours, label, 0))] for label in chosen}
    path, theirs = written_by_neuroglancer(tmp_path, ours, label_points)
    # info: the same coordinate space, type, properties and relationship ids. The format
    # names the type in capitals ("POINT"), the writer in lower case; readers take both.
    for key in ["@type", "dimensions", "properties"]:
        assert ours.metadata[key] == theirs.metadata[key], key
    assert ours.metadata["annotation_type"] == "POINT"
    assert ours.annotation_type == theirs.annotation_type == "point"
    assert [x["id"] for x in ours.metadata["relationships"]] == ["segment"]
    assert [x["id"] for x in theirs.metadata["relationships"]] == ["segment"]
    for label in chosen:
        # The relationship index, byte for byte: count, positions, ids in the same order.
        got = requests.get(f"{source(base)}segment/{label}", timeout=60)
        assert got.status_code == 200
        assert got.content == (path / "rel_segment" / str(label)).read_bytes(), label
        # Decoded, field by field.
        mine, written = ours.relationships["segment"][label], theirs.relationships["segment"][label]
        assert [fields(a) for a in mine] == [fields(a) for a in written], label
        # The annotation id index, byte for byte and decoded.
        for i in label_points[label][1][:5]:
            got = requests.get(f"{source(base)}by_id/{i}", timeout=60)
            assert got.content == (path / "by_id" / str(i)).read_bytes(), i
            a, b = ours.by_id[i], theirs.by_id[i]
            assert fields(a) == fields(b), i
            assert [[int(s) for s in segs] for segs in a.segments] == [[label]]


def test_a_vastdb_table_answers_the_bytes_of_the_dataset_it_was_loaded_from(servers):
    """The reference set imported and loaded into VastDB: every key the same, byte for byte."""
    edge, vast = source(servers["raw"]), source(servers["columnar"])
    keys = ["info", "spatial/0/0_0_0"] + [f"segment/{label}" for label in sorted(LABELS)]
    for ordinal, label in enumerate(sorted(LABELS)):
        count = requests.get(f"{servers['raw']}/labels/{label}", timeout=60).json()["point_count"]
        keys += [f"by_id/{(ordinal << 32) + rank}" for rank in {0, count // 2, count - 1}]
    for key in keys:
        a, b = requests.get(edge + key, timeout=60), requests.get(vast + key, timeout=60)
        assert a.status_code == b.status_code == 200, (key, a.status_code, b.status_code)
        assert a.content == b.content, key


def test_errors_are_the_apis_and_what_neuroglancer_reads_as_missing(servers):
    base = servers["sample"]
    url = source(base)
    # Neuroglancer reads a 404 of a relationship key as no annotations; tensorstore as missing.
    r = requests.get(f"{url}segment/1", timeout=60)
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    with pytest.raises(KeyError):
        reader(base).relationships["segment"][1]
    for key, status, code in [
        ("segment/x", 400, "bad_label"),
        ("segment/18446744073709551616", 400, "bad_label"),
        ("by_id/12a", 400, "bad_request"),
        ("spatial/0/0_0", 400, "bad_request"),
        ("spatial/zero/0_0_0", 400, "bad_request"),
        ("spatial/0/1_0_0", 404, "not_found"),
        ("spatial/99/0_0_0", 404, "not_found"),
        ("by_id/18446744073709551615", 404, "not_found"),
        ("mesh/1", 404, "not_found"),
    ]:
        r = requests.get(url + key, timeout=60)
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), key
    r = requests.post(url + "info", timeout=60)
    assert r.status_code == 405


@pytest.mark.parametrize("key", ["info", "segment/722817260", "spatial/0/0_0_0", "by_id/1"])
def test_answers_carry_cors_etags_and_server_timing(servers, key):
    url = source(servers["sample"]) + key
    r = requests.get(url, headers={"Origin": "https://neuroglancer-demo.appspot.com"}, timeout=300)
    assert r.status_code == 200, r.text
    assert r.headers["Access-Control-Allow-Origin"] in ("*", "https://neuroglancer-demo.appspot.com")
    assert "Server-Timing" in r.headers
    etag = r.headers["ETag"]
    again = requests.get(url, headers={"If-None-Match": etag}, timeout=60)
    assert again.status_code == 304 and again.content == b""
