"""An S3 dataset under faults: `pocaduck-edge serve --data s3://…` reads moto's S3 server
through a fault-injecting proxy (fault_proxy.py) that answers 500s, 503 SlowDown, 404s,
truncated bodies, a changed ETag mid-read, and slow or stalled answers. Each fault gives the
right points after a bounded retry or a clear 503 within a bounded time, never other points;
and a new version uploaded over the old one while it is served gives either version whole.

Run: tests/python/setup_venv.sh && POCADUCK_EDGE_BIN=... .venv/bin/python -m pytest tests/python/test_object_store_faults.py
"""

import os
import subprocess
import threading
import time

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from edge_server import serve
from fault_proxy import FaultProxy

BIN = os.environ.get("POCADUCK_EDGE_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="set POCADUCK_EDGE_BIN to the pocaduck-edge binary")
BUCKET = "pocaduck"
KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "SECRETEXAMPLE"}
# The server's store settings (crates/query/src/store.rs): 3 retries, waits of 0.1 s
# doubling to at most 2 s; the request timeout is set to 2 s here (AWS_TIMEOUT).
RETRIES = 3
TIMEOUT_S = 2
POINTS = "points/part-00000.parquet"


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """moto, the proxy in front of it, the sample on disk and in the bucket (`faulty`, read
    through the proxy), a second version of it (`v2` on disk) and the server; yields a
    namespace of them."""
    moto = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    moto.start()
    proxy = None
    try:
        host, port = moto.get_host_and_port()
        client = boto3.client("s3", endpoint_url=f"http://{host}:{port}", region_name="us-east-1",
                              aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket=BUCKET)
        root = tmp_path_factory.mktemp("faults")
        disk, v2 = root / "disk", root / "v2"
        for out, voxel in [(disk, "256"), (v2, "200")]:
            subprocess.run([BIN, "sample", str(out), "--voxel-nm", voxel], check=True, timeout=600,
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for ds in ["faulty", "live"]:
            upload(client, disk, ds)
        proxy = FaultProxy(host, port)
        env = {**os.environ, **KEYS, "AWS_ENDPOINT": proxy.endpoint, "AWS_ALLOW_HTTP": "true",
               "AWS_REGION": "us-east-1", "AWS_TIMEOUT": f"{TIMEOUT_S}s"}
        args = ["--data", str(disk), "--data", str(v2),
                "--data", f"s3://{BUCKET}/datasets/faulty", "--data", f"s3://{BUCKET}/datasets/live"]
        with serve(BIN, args, env=env) as url:
            yield type("Stack", (), dict(url=url, proxy=proxy, client=client, disk=disk, v2=v2))
    finally:
        if proxy:
            proxy.stop()
        moto.stop()


def upload(client, folder, ds, first=()):
    """Uploads every file of `folder` under datasets/`ds`, the paths in `first` first."""
    files = sorted((p for p in folder.rglob("*") if p.is_file()),
                   key=lambda p: (str(p.relative_to(folder)) not in first, str(p)))
    for path in files:
        client.upload_file(str(path), BUCKET, f"datasets/{ds}/{path.relative_to(folder)}")


def npy(stack, ds, label):
    """(status, error code or None, body, seconds) of a label's npy answer."""
    t0 = time.monotonic()
    r = requests.get(f"{stack.url}/v1/datasets/{ds}/labels/{label}/points?format=npy", timeout=60)
    took = time.monotonic() - t0
    code = r.json()["error"]["code"] if r.status_code != 200 else None
    return r.status_code, code, r.content, took


@pytest.fixture
def faults(stack):
    """The stack with no faults, its dataset loaded and its expected answers; the faults a
    test adds are dropped after it."""
    stack.proxy.reset()
    labels = requests.get(f"{stack.url}/v1/datasets/disk/labels?limit=100", timeout=60).json()["labels"]
    stack.labels = labels
    stack.label = labels[0]
    status, _, stack.expected, _ = npy(stack, "disk", stack.label)
    assert status == 200
    assert npy(stack, "faulty", stack.label)[:3] == (200, None, stack.expected)
    stack.proxy.reset()
    yield stack
    stack.proxy.reset()


def tries(stack):
    return [s for s in stack.proxy.seen(POINTS) if s.method == "GET"]


@pytest.mark.parametrize("status,code", [(500, "InternalError"), (503, "SlowDown")])
def test_a_failing_store_is_retried_and_answers_the_points(faults, status, code):
    faults.proxy.fault(POINTS, "status", count=RETRIES, status=status, code=code)
    got, _, body, took = npy(faults, "faulty", faults.label)
    assert got == 200 and body == faults.expected
    assert len(tries(faults)) == RETRIES + 1
    assert took < 8, took


@pytest.mark.parametrize("status,code", [(500, "InternalError"), (503, "SlowDown")])
def test_a_store_failing_past_the_retries_is_a_503_within_the_bound(faults, status, code):
    faults.proxy.fault(POINTS, "status", count=1000, status=status, code=code)
    got, error, body, took = npy(faults, "faulty", faults.label)
    assert (got, error) == (503, "dataset_unavailable"), body[:300]
    assert len(tries(faults)) == RETRIES + 1
    # Waits of at most 0.1 + 0.2 + 0.4 s.
    assert took < 5, took
    assert b"s3://" not in body and b"InternalError" not in body and b"SlowDown" not in body
    faults.proxy.reset()
    assert npy(faults, "faulty", faults.label)[:3] == (200, None, faults.expected)


def test_a_missing_object_is_a_503_and_the_dataset_serves_when_it_is_back(faults):
    faults.proxy.fault(POINTS, "status", count=1, status=404, code="NoSuchKey")
    got, error, _, took = npy(faults, "faulty", faults.label)
    assert (got, error) == (503, "dataset_unavailable")
    assert len(tries(faults)) == 1 and took < 5
    assert npy(faults, "faulty", faults.label)[:3] == (200, None, faults.expected)


def test_a_truncated_body_is_resumed_and_answers_the_points(faults):
    faults.proxy.fault(POINTS, "truncate", count=1)
    got, _, body, took = npy(faults, "faulty", faults.label)
    assert got == 200 and body == faults.expected
    seen = tries(faults)
    assert [s.fault for s in seen] == ["truncate", None], seen
    # The second try asks for the rest of the first's range.
    assert seen[1].range != seen[0].range
    assert took < 8, took


def test_an_etag_that_changes_mid_read_is_a_503_never_other_points(faults):
    faults.proxy.fault(POINTS, "truncate", count=1)
    faults.proxy.fault(POINTS, "etag", count=1000)
    got, error, _, took = npy(faults, "faulty", faults.label)
    assert (got, error) == (503, "dataset_unavailable")
    assert [s.fault for s in tries(faults)] == ["truncate", "etag"]
    assert took < 8, took


def test_a_slow_answer_is_cut_at_the_timeout_and_tried_again(faults):
    faults.proxy.fault(POINTS, "delay", count=1, seconds=TIMEOUT_S + 3)
    got, _, body, took = npy(faults, "faulty", faults.label)
    assert got == 200 and body == faults.expected
    assert len(tries(faults)) == 2
    assert TIMEOUT_S <= took < TIMEOUT_S + 5, took


@pytest.mark.parametrize("fault", ["delay", "stall"])
def test_an_answer_that_never_comes_is_a_503_within_the_bound(faults, fault):
    faults.proxy.fault(POINTS, fault, count=1000, seconds=TIMEOUT_S + 3)
    got, error, _, took = npy(faults, "faulty", faults.label)
    assert (got, error) == (503, "dataset_unavailable")
    # Each try is cut at the timeout; a stalled body is resumed, so it may take more tries.
    assert len(tries(faults)) >= RETRIES + 1
    bound = (RETRIES + 1) * TIMEOUT_S + 3
    assert took < bound, (took, bound)


def test_a_new_version_uploaded_while_served_answers_either_version_whole(faults):
    labels = faults.labels
    old = {label: npy(faults, "disk", label)[2] for label in labels}
    new = {label: npy(faults, "v2", label)[2] for label in labels}
    assert all(old[label] != new[label] for label in labels)
    assert all(npy(faults, "live", label)[:3] == (200, None, old[label]) for label in labels)

    seen, done = [], threading.Event()

    def read():
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline and len(seen) < 5000:
            for label in labels:
                seen.append((label, *npy(faults, "live", label)[:3]))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        time.sleep(0.3)
        # The manifest first: the worst order for a reader.
        upload(faults.client, faults.v2, "live", first=("manifest.json",))
        deadline = time.monotonic() + 30
        while not all(npy(faults, "live", label)[:3] == (200, None, new[label]) for label in labels):
            assert time.monotonic() < deadline, ("the new version is not served after 30 s",
                                                 [npy(faults, "live", label)[:2] for label in labels])
            time.sleep(0.25)
    finally:
        done.set()
        reader.join(timeout=180)
    counts = {"old": 0, "new": 0, "503": 0}
    for label, status, error, body in seen:
        if status == 200:
            assert body in (old[label], new[label]), f"label {label}: points of neither version"
            counts["old" if body == old[label] else "new"] += 1
        else:
            assert (status, error) == (503, "dataset_unavailable"), (label, status, error)
            counts["503"] += 1
    assert counts["old"] > 0, counts
