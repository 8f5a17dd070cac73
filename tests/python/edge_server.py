"""Starts `pocaduck-edge serve` on a free loopback port and stops it."""

import contextlib
import subprocess
import time


@contextlib.contextmanager
def serve(binary, args, env=None):
    """Runs `binary serve --addr 127.0.0.1:0 ARGS`; yields its base URL once it listens."""
    proc = subprocess.Popen([binary, "serve", "--addr", "127.0.0.1:0", *args], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        deadline = time.monotonic() + 60
        line = ""
        while time.monotonic() < deadline and not line.startswith("listening on "):
            line = proc.stdout.readline()
            assert line, "the server exited before listening"
        assert line.startswith("listening on "), "the server did not listen within 60 s"
        yield line.strip().removeprefix("listening on ")
    finally:
        proc.kill()
        proc.wait(timeout=30)
