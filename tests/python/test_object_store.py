"""Datasets in an S3 bucket: moto's S3 server on a loopback port holds the sample, uploaded
with boto3, and `pocaduck-edge serve --data s3://…` (object_store's S3 client: signed range
reads) must answer exactly as for the same files on disk.

Run: tests/python/setup_venv.sh && POCADUCK_EDGE_BIN=... .venv/bin/python -m pytest tests/python/test_object_store.py
"""

import os
import subprocess

import boto3
import pytest
import requests
from moto.server import ThreadedMotoServer

from edge_server import serve

BIN = os.environ.get("POCADUCK_EDGE_BIN")
pytestmark = pytest.mark.skipif(not BIN, reason="set POCADUCK_EDGE_BIN to the pocaduck-edge binary")
BUCKET = "pocaduck"
KEYS = {"AWS_ACCESS_KEY_ID": "AKIAEXAMPLE", "AWS_SECRET_ACCESS_KEY": "SECRETEXAMPLE"}


@pytest.fixture(scope="module")
def s3():
    """moto's S3 server with an empty bucket; yields its endpoint."""
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1",
                              aws_access_key_id=KEYS["AWS_ACCESS_KEY_ID"],
                              aws_secret_access_key=KEYS["AWS_SECRET_ACCESS_KEY"])
        client.create_bucket(Bucket=BUCKET)
        yield endpoint, client
    finally:
        server.stop()


@pytest.fixture(scope="module")
def server(s3, tmp_path_factory):
    """The sample on disk as `disk`, its copy in the bucket as `bucket`, and a prefix with
    nothing under it as `missing`; yields the base URL."""
    endpoint, client = s3
    disk = tmp_path_factory.mktemp("edge") / "disk"
    subprocess.run([BIN, "sample", str(disk)], check=True, timeout=600,
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for path in sorted(p for p in disk.rglob("*") if p.is_file()):
        client.upload_file(str(path), BUCKET, f"datasets/bucket/{path.relative_to(disk)}")
    env = {**os.environ, **KEYS, "AWS_ENDPOINT": endpoint, "AWS_ALLOW_HTTP": "true",
           "AWS_REGION": "us-east-1"}
    args = ["--data", str(disk), "--data", f"s3://{BUCKET}/datasets/bucket",
            "--data", f"s3://{BUCKET}/datasets/missing"]
    with serve(BIN, args, env=env) as url:
        yield url


def get(url, **kw):
    r = requests.get(url, timeout=60, **kw)
    assert r.status_code in (200, 206), (url, r.status_code, r.text[:300])
    return r


def labels(server, ds):
    out, after = [], None
    while True:
        page = get(f"{server}/v1/datasets/{ds}/labels?limit=5" + (f"&after={after}" if after else "")).json()
        out += page["labels"]
        after = page["next_after"]
        if not after:
            return out


def test_the_bucket_serves_what_the_disk_serves(server):
    datasets = {d["name"]: d for d in get(f"{server}/v1/datasets").json()["datasets"]}
    assert datasets["bucket"]["status"] == "ok", datasets["bucket"]
    for key in ["label_count", "point_count", "dims"]:
        assert datasets["bucket"][key] == datasets["disk"][key], key
    ids = labels(server, "bucket")
    assert ids == labels(server, "disk") and len(ids) >= 10
    assert any(int(label) > 2**53 for label in ids)
    for label in ids:
        def both(path):
            return [get(f"{server}/v1/datasets/{ds}/labels/{label}{path}") for ds in ["bucket", "disk"]]
        bucket, disk = both("")
        assert bucket.json() == disk.json(), label
        for fmt in ["npy", "parquet", "arrow"]:
            bucket, disk = both(f"/points?format={fmt}")
            assert bucket.content == disk.content, (label, fmt)
        bucket, disk = both("/points?format=npy&limit=100")
        assert bucket.content == disk.content, label


def test_ranges_of_files_in_the_bucket(server):
    def manifest(ds, headers=None):
        return get(f"{server}/v1/datasets/{ds}/files/manifest.json", headers=headers)

    whole = manifest("disk").content
    assert manifest("bucket").content == whole
    part = manifest("bucket", headers={"Range": "bytes=10-49"})
    assert part.status_code == 206 and part.content == whole[10:50]
    assert part.headers["Content-Range"] == f"bytes 10-49/{len(whole)}"


def test_an_empty_prefix_is_unavailable_while_the_others_serve(server):
    datasets = {d["name"]: d for d in get(f"{server}/v1/datasets").json()["datasets"]}
    assert datasets["missing"]["status"] == "unavailable", datasets["missing"]
    r = requests.get(f"{server}/v1/datasets/missing/labels", timeout=60)
    assert r.status_code == 503 and r.json()["error"]["code"] == "dataset_unavailable", r.text
    # One generic line naming the dataset: the store's message and paths stay in the log.
    assert r.json()["error"]["message"] == "dataset missing is unavailable", r.text
    assert r.json()["error"]["request_id"] == r.headers["X-Request-Id"]
    assert "manifest.json" not in r.text and "s3://" not in r.text
    assert KEYS["AWS_SECRET_ACCESS_KEY"] not in r.text
    assert get(f"{server}/v1/datasets/bucket/labels").json()["labels"]
