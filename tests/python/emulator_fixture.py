"""Starts and stops `vastdb-emulator` on a free loopback port."""

import json
import subprocess
import time
import urllib.request

import vastdb


class Emulator:
    """A running emulator process: `url`, `connect()`, `stop()`, `fault(kind, count)`,
    `arm_write_fault(kind, after)`, `stats()`."""

    def __init__(self, binary, data_dir, access="AKIAEXAMPLE", secret="SECRETEXAMPLE", buckets=("pocaduck",)):
        args = [binary, "--listen", "127.0.0.1:0", "--data", str(data_dir),
                "--access-key", access, "--secret-key", secret]
        for bucket in buckets:
            args += ["--bucket", bucket]
        self.process = subprocess.Popen(args, stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline().strip()
        if not line.startswith("listening on "):
            self.stop()
            raise RuntimeError(f"emulator did not start: {line!r}")
        self.url = line.removeprefix("listening on ")
        self.access, self.secret = access, secret

    def connect(self, secret=None):
        """An SDK session, signing with `secret` if given, else with the emulator's own."""
        return vastdb.connect(endpoint=self.url, access=self.access, secret=secret or self.secret)

    def fault(self, kind, count=1, code=None):
        query = f"kind={kind}&count={count}" + (f"&code={code}" if code is not None else "")
        request = urllib.request.Request(f"{self.url}/_emulator/fault?{query}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def arm_write_fault(self, kind, after):
        """The write of `kind` (insert, update or delete) after the next `after` ones fails
        with 500 InternalError."""
        request = urllib.request.Request(
            f"{self.url}/_emulator/fault?kind={kind}&after={after}", method="POST")
        with urllib.request.urlopen(request, timeout=10) as response:
            assert response.status == 200

    def stats(self):
        """`{"queries": ?data requests so far, "pending_faults": faults not yet served,
        "open_transactions": transactions begun and not yet ended}`."""
        with urllib.request.urlopen(f"{self.url}/_emulator/stats", timeout=10) as response:
            return json.load(response)

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)
