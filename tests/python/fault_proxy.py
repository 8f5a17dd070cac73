"""A fault-injecting HTTP proxy on a loopback port, in front of an S3 server (moto).

Each request is forwarded to the upstream unless a fault rule matches it: a rule names a
substring of the path, a fault and how many requests it applies to. Faults:

* ``status``: answer `status` with an S3 error document of `code` (500 InternalError,
  503 SlowDown, 404 NoSuchKey …) instead of forwarding;
* ``truncate``: forward, send the upstream's status and headers (its full Content-Length)
  and half the body, then close the connection;
* ``etag``: forward with another ETag than the object's;
* ``delay``: wait `seconds` before forwarding;
* ``stall``: send the headers and half the body, then wait `seconds` and close.

Every wait is bounded (at most MAX_WAIT seconds), and the proxy records each request and the
fault it got, for tests to count tries.
"""

import http.client
import http.server
import threading
import time
from dataclasses import dataclass, field

MAX_WAIT = 30.0


@dataclass
class Rule:
    """A fault for the next `count` requests whose path contains `path`."""
    path: str
    fault: str
    count: int = 1
    status: int = 500
    code: str = "InternalError"
    seconds: float = 0.0


@dataclass
class Seen:
    """A request the proxy got, and the fault it answered with (None: forwarded as is)."""
    method: str
    path: str
    range: str | None
    fault: str | None


@dataclass
class _State:
    upstream: tuple[str, int]
    rules: list[Rule] = field(default_factory=list)
    seen: list[Seen] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, path):
        with self.lock:
            for rule in self.rules:
                if rule.count > 0 and rule.path in path:
                    rule.count -= 1
                    return rule
        return None


class FaultProxy:
    """The proxy, serving on 127.0.0.1 in a thread of its own until `stop`."""

    def __init__(self, upstream_host, upstream_port):
        self.state = _State(upstream=(upstream_host, upstream_port))
        state = self.state

        class Handler(_Handler):
            pass

        Handler.state = state
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def endpoint(self):
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def fault(self, path, fault, count=1, **kw):
        """Adds a rule (after the others: the first that matches applies)."""
        with self.state.lock:
            self.state.rules.append(Rule(path, fault, count, **kw))

    def reset(self):
        """Drops every rule and forgets the requests seen."""
        with self.state.lock:
            self.state.rules.clear()
            self.state.seen.clear()

    def seen(self, path):
        """The requests seen whose path contains `path`."""
        with self.state.lock:
            return [s for s in self.state.seen if path in s.path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    state: _State

    def log_message(self, *args):
        pass

    def _handle(self):
        try:
            self._answer()
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up on a slow or cut answer.
            self.close_connection = True

    def _answer(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        rule = self.state.take(self.path)
        with self.state.lock:
            self.state.seen.append(Seen(self.command, self.path, self.headers.get("Range"),
                                        rule.fault if rule else None))
        if rule and rule.fault == "status":
            return self._error(rule.status, rule.code)
        if rule and rule.fault == "delay":
            time.sleep(min(rule.seconds, MAX_WAIT))
        status, headers, data = self._forward(body)
        if rule and rule.fault == "etag":
            headers = [(k, '"0123456789abcdef0123456789abcdef"' if k.lower() == "etag" else v)
                       for k, v in headers]
        self.send_response(status)
        for k, v in headers:
            if k.lower() not in ("transfer-encoding", "connection"):
                self.send_header(k, v)
        if rule and rule.fault in ("truncate", "stall"):
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(data[: len(data) // 2])
            self.wfile.flush()
            if rule.fault == "stall":
                time.sleep(min(rule.seconds, MAX_WAIT))
            self.close_connection = True
            return
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(data)

    def _forward(self, body):
        conn = http.client.HTTPConnection(*self.state.upstream, timeout=MAX_WAIT)
        try:
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request(self.command, self.path, body=body or None, headers=headers)
            r = conn.getresponse()
            data = r.read()
            return r.status, r.getheaders(), data
        finally:
            conn.close()

    def _error(self, status, code):
        doc = (f'<?xml version="1.0" encoding="UTF-8"?><Error><Code>{code}</Code>'
               f"<Message>injected by the fault proxy</Message></Error>").encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(doc)))
        self.end_headers()
        self.wfile.write(doc)

    do_GET = do_HEAD = do_PUT = do_POST = do_DELETE = _handle
