//! `serve`'s bounds on connections, against the real binary on 127.0.0.1 over raw sockets:
//! heads trickled byte by byte and idle connections closed at the header timeout (2,000 at
//! once while a normal request still answers), stalled bodies cut, h2c refused unless asked
//! for, the connection cap holding, SIGTERM letting a request in progress finish while
//! the process exits within the shutdown bound, and points answers waiting for the bytes
//! that answers in flight hold.

use std::io::{ErrorKind, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::{bin, client, grid_dataset, wait_for};

/// The big label of the dataset: about 24 MB as an Arrow answer.
const BIG: u64 = 2;
const BIG_POINTS: usize = 1 << 20;

/// A dataset of a small label and a big one, written once.
fn dataset() -> &'static Path {
    static DIR: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    let (_, path) = DIR.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grid");
        grid_dataset(&path, &[(1, 100), (BIG, BIG_POINTS)]);
        (dir, path)
    });
    path
}

/// A server started directly (so that the test can signal it), killed if still running
/// when dropped.
struct Server {
    child: Child,
    addr: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Server {
    fn start(extra: &[&str]) -> Self {
        let mut child = Command::new(bin())
            .args(["serve", "--addr", "127.0.0.1:0", "--data"])
            .arg(dataset())
            .args(extra)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(
            &mut std::io::BufReader::new(child.stdout.take().unwrap()),
            &mut line,
        )
        .unwrap();
        let addr = line
            .trim()
            .strip_prefix("listening on http://")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        Self { child, addr }
    }

    fn connect(&self) -> TcpStream {
        let stream = TcpStream::connect(&self.addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        stream
    }

    fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    fn signal(&self, signal: &str) {
        let status = Command::new("kill")
            .args([signal, &self.child.id().to_string()])
            .status()
            .unwrap();
        assert!(status.success());
    }
}

/// What a read of a socket found.
#[derive(Debug, PartialEq)]
enum Got {
    /// Bytes.
    Bytes(usize),
    /// Nothing yet.
    Nothing,
    /// The end: the peer closed or reset the connection.
    Closed,
}

fn read_some(stream: &mut TcpStream, buf: &mut [u8]) -> Got {
    match stream.read(buf) {
        Ok(0) => Got::Closed,
        Ok(n) => Got::Bytes(n),
        Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => Got::Nothing,
        Err(_) => Got::Closed,
    }
}

/// Reads until the peer closes, for at most `bound`: the bytes, and whether it closed.
fn read_to_close(stream: &mut TcpStream, bound: Duration) -> (Vec<u8>, bool) {
    let deadline = Instant::now() + bound;
    let mut out = Vec::new();
    let mut buf = [0u8; 64 << 10];
    while Instant::now() < deadline {
        match read_some(stream, &mut buf) {
            Got::Bytes(n) => out.extend_from_slice(&buf[..n]),
            Got::Nothing => {}
            Got::Closed => return (out, true),
        }
    }
    (out, false)
}

/// Reads one answer with a `Content-Length` whole: its head and its body.
fn read_answer(stream: &mut TcpStream) -> (String, Vec<u8>) {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 64 << 10];
    loop {
        assert!(Instant::now() < deadline, "no whole answer within 10 s");
        if let Some(end) = out.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&out[..end]).into_owned();
            let length: usize = head
                .lines()
                .find_map(|l| {
                    let (name, value) = l.split_once(':')?;
                    name.eq_ignore_ascii_case("content-length")
                        .then(|| value.trim().parse().unwrap())
                })
                .expect("a Content-Length");
            if out.len() >= end + 4 + length {
                return (head, out[end + 4..end + 4 + length].to_vec());
            }
        }
        match read_some(stream, &mut buf) {
            Got::Bytes(n) => out.extend_from_slice(&buf[..n]),
            Got::Nothing => {}
            Got::Closed => panic!("closed before the whole answer: {out:?}"),
        }
    }
}

#[test]
fn a_head_trickled_byte_by_byte_is_cut_at_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1"]);
    let mut stream = server.connect();
    let t0 = Instant::now();
    stream.write_all(b"GET /v1/datasets HTTP/1.1\r\n").unwrap();
    let mut buf = [0u8; 1024];
    let closed = loop {
        assert!(
            t0.elapsed() < Duration::from_secs(5),
            "a trickled head still open after 5 s"
        );
        // A byte every 100 ms: the head grows, never ends.
        if stream.write_all(b"x").is_err() || read_some(&mut stream, &mut buf) == Got::Closed {
            break t0.elapsed();
        }
    };
    assert!(
        closed >= Duration::from_millis(900),
        "closed after {closed:?}, before the header timeout"
    );
}

#[test]
fn an_idle_kept_alive_connection_is_closed_at_the_header_timeout() {
    let server = Server::start(&["--header-timeout", "1"]);
    let mut stream = server.connect();
    stream
        .write_all(b"GET /v1/datasets HTTP/1.1\r\nHost: a\r\n\r\n")
        .unwrap();
    let (head, body) = read_answer(&mut stream);
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(!body.is_empty());
    let t0 = Instant::now();
    let (rest, closed) = read_to_close(&mut stream, Duration::from_secs(5));
    assert!(closed, "an idle connection still open after 5 s");
    assert!(rest.is_empty(), "{rest:?}");
    assert!(
        t0.elapsed() >= Duration::from_millis(900),
        "closed after {:?}, before the timeout",
        t0.elapsed()
    );
}

#[test]
fn a_stalled_request_body_is_cut_at_the_body_timeout() {
    let server = Server::start(&["--body-timeout", "1"]);
    let mut stream = server.connect();
    let t0 = Instant::now();
    stream
        .write_all(
            b"POST /v1/datasets/grid/points HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n{\"labels\": [",
        )
        .unwrap();
    let (answer, closed) = read_to_close(&mut stream, Duration::from_secs(5));
    let elapsed = t0.elapsed();
    let answer = String::from_utf8_lossy(&answer);
    assert!(closed, "a stalled body still open after 5 s: {answer}");
    assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
    assert!(answer.contains("no bytes of the body"), "{answer}");
    assert!(
        elapsed >= Duration::from_millis(900),
        "cut after {elapsed:?}"
    );
}

/// The HTTP/2 preface and an empty SETTINGS frame: a prior-knowledge h2c client's opening.
const H2_OPENING: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00";

#[test]
fn h2c_is_served_only_when_asked_for() {
    let refused = Server::start(&[]);
    let mut stream = refused.connect();
    stream.write_all(H2_OPENING).unwrap();
    let (answer, closed) = read_to_close(&mut stream, Duration::from_secs(5));
    assert!(closed, "an h2c opening left open");
    // An HTTP/1.1 refusal, or nothing: never an HTTP/2 frame.
    assert!(
        answer.is_empty() || answer.starts_with(b"HTTP/1.1 "),
        "{answer:?}"
    );

    let served = Server::start(&["--h2c"]);
    let mut stream = served.connect();
    stream.write_all(H2_OPENING).unwrap();
    let mut frame = [0u8; 9];
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut got = 0;
    while got < frame.len() {
        assert!(Instant::now() < deadline, "no HTTP/2 frame within 5 s");
        match read_some(&mut stream, &mut frame[got..]) {
            Got::Bytes(n) => got += n,
            Got::Nothing => {}
            Got::Closed => panic!("closed before a frame"),
        }
    }
    assert_eq!(
        frame[3], 0x04,
        "the server's first frame is SETTINGS: {frame:?}"
    );
}

#[test]
fn the_connection_cap_holds() {
    let server = Server::start(&[
        "--max-connections",
        "2",
        "--threads",
        "2",
        "--header-timeout",
        "30",
    ]);
    let held: Vec<TcpStream> = (0..2).map(|_| server.connect()).collect();
    // Both are taken once the server has accepted them; a third waits, unanswered.
    std::thread::sleep(Duration::from_millis(200));
    let waiting = reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(1))
        .build()
        .unwrap()
        .get(server.url("/v1/datasets"))
        .send();
    assert!(
        waiting.is_err(),
        "a third connection was answered: {waiting:?}"
    );
    drop(held);
    let t0 = Instant::now();
    let answered = client().get(server.url("/v1/datasets")).send().unwrap();
    assert_eq!(answered.status(), 200);
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "answered {:?} after a connection closed",
        t0.elapsed()
    );
}

/// Sends a GET of the big label's Arrow answer and reads its head.
fn ask_big(server: &Server) -> (TcpStream, Vec<u8>) {
    let mut stream = server.connect();
    write!(
        stream,
        "GET /v1/datasets/grid/labels/{BIG}/points HTTP/1.1\r\nHost: a\r\n\r\n"
    )
    .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while !out.windows(4).any(|w| w == b"\r\n\r\n") {
        assert!(Instant::now() < deadline, "no head within 10 s");
        if let Got::Bytes(n) = read_some(&mut stream, &mut buf) {
            out.extend_from_slice(&buf[..n]);
        }
    }
    assert!(out.starts_with(b"HTTP/1.1 200"), "{out:?}");
    (stream, out)
}

/// The body of a chunked answer, de-chunked.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::new();
    loop {
        let line = raw
            .windows(2)
            .position(|w| w == b"\r\n")
            .expect("a size line");
        let size = usize::from_str_radix(std::str::from_utf8(&raw[..line]).unwrap(), 16).unwrap();
        raw = &raw[line + 2..];
        if size == 0 {
            return out;
        }
        out.extend_from_slice(&raw[..size]);
        raw = &raw[size + 2..];
    }
}

#[test]
fn sigterm_lets_a_request_in_progress_finish_and_exits_within_the_bound() {
    let mut server = Server::start(&["--shutdown-timeout", "3", "--threads", "2"]);
    // One client that never reads its answer past the head: it must not hold the process.
    let (_stuck, _) = ask_big(&server);
    let idle = server.connect();
    let (mut reading, head) = ask_big(&server);
    let t0 = Instant::now();
    server.signal("-TERM");
    // No new connection is taken once stopped.
    let refused_by = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect(&server.addr).is_ok() {
        assert!(
            Instant::now() < refused_by,
            "still accepting 2 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // The answer in progress goes on to its end.
    let (rest, closed) = read_to_close(&mut reading, Duration::from_secs(10));
    assert!(closed, "the answer's connection is closed once it is sent");
    let end = head.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    let mut raw = head[end + 4..].to_vec();
    raw.extend_from_slice(&rest);
    let rows = pocaduck_edge_conformance::decode::arrow_rows(&dechunk(&raw));
    assert_eq!(rows.len(), BIG_POINTS, "the whole answer");
    drop(idle);
    let status = wait_for(Duration::from_secs(8), "no exit after SIGTERM", || {
        server.child.try_wait().unwrap()
    });
    assert!(status.success(), "stopped with {status}");
    let exited = t0.elapsed();
    assert!(
        exited >= Duration::from_millis(2500),
        "exited after {exited:?}: before the stuck client's bound"
    );
}

#[test]
fn slowloris_two_thousand_trickled_heads_are_closed_while_a_request_answers() {
    const CONNECTIONS: usize = 2000;
    let server = Server::start(&["--header-timeout", "2", "--threads", "2"]);
    let t0 = Instant::now();
    let mut open: Vec<(TcpStream, Instant)> = (0..CONNECTIONS)
        .map(|_| {
            let mut stream = TcpStream::connect(&server.addr).unwrap();
            stream.write_all(b"GET /v1/datasets HTTP/1.1\r\n").unwrap();
            stream.set_nonblocking(true).unwrap();
            (stream, Instant::now())
        })
        .collect();
    let opened = Instant::now();
    let url = server.url("/v1/datasets");
    let normal = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let t0 = Instant::now();
        let r = client().get(url).send().unwrap();
        (r.status(), t0.elapsed())
    });
    // Every head is cut within the timeout and a margin of its connection's opening, as far
    // as this thread sees: one opened long before the last was is closed when first looked
    // at, and the last are closed within the bound of the last opening.
    let bound = Duration::from_secs(4);
    let mut first_look = true;
    let mut buf = [0u8; 1024];
    while !open.is_empty() {
        assert!(
            opened.elapsed() < bound,
            "{} of {CONNECTIONS} trickled heads still open {bound:?} after the last opened",
            open.len()
        );
        open.retain_mut(|(stream, since)| {
            let closed = stream
                .write(b"x")
                .is_err_and(|e| e.kind() != ErrorKind::WouldBlock)
                || read_some(stream, &mut buf) == Got::Closed;
            assert!(
                closed || !first_look || since.elapsed() < bound,
                "a trickled head still open {:?} after its opening",
                since.elapsed()
            );
            !closed
        });
        first_look = false;
        std::thread::sleep(Duration::from_millis(100));
    }
    let (status, took) = normal.join().unwrap();
    eprintln!(
        "{CONNECTIONS} connections opened in {:?}, all closed {:?} after the last opened; a normal request took {took:?}",
        opened - t0,
        opened.elapsed()
    );
    assert_eq!(status, 200);
    assert!(
        took < Duration::from_secs(1),
        "a normal request took {took:?}"
    );
}

#[test]
fn points_answers_wait_for_the_byte_budget_and_past_the_waiting_cap_are_refused_busy() {
    // A budget of 1 KiB: any points answer takes all of it.
    let server = Server::start(&[
        "--max-answer-bytes",
        "1024",
        "--max-waiting-answers",
        "1",
        "--threads",
        "2",
    ]);
    // A client that reads only the head of the big answer holds the budget.
    let (stuck, _) = ask_big(&server);
    let mut waiting = server.connect();
    write!(
        waiting,
        "GET /v1/datasets/grid/labels/1/points?format=npy HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let (early, _) = read_to_close(&mut waiting, Duration::from_millis(500));
    assert!(early.is_empty(), "answered while the budget was held");
    // One answer waits already: the next is refused at once, saying when to retry.
    let refused = client()
        .get(server.url("/v1/datasets/grid/labels/1/points?format=npy"))
        .send()
        .unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["retry-after"], "1");
    let error: serde_json::Value = refused.json().unwrap();
    assert_eq!(error["error"]["code"], "busy");
    // What needs no answer budget is answered meanwhile, and the metrics say who holds it.
    let metrics = client().get(server.url("/metrics")).send().unwrap();
    let metrics = metrics.text().unwrap();
    for line in [
        "pocaduck_edge_answer_bytes_held 1024",
        "pocaduck_edge_answers_waiting 1",
    ] {
        assert!(
            metrics.lines().any(|l| l == line),
            "no {line:?} in {metrics}"
        );
    }
    // The holder goes away: the waiting answer is sent, whole.
    drop(stuck);
    let (raw, closed) = read_to_close(&mut waiting, Duration::from_secs(10));
    assert!(closed, "no whole answer within 10 s: {raw:?}");
    let end = raw.windows(4).position(|w| w == b"\r\n\r\n").unwrap();
    assert!(raw.starts_with(b"HTTP/1.1 200"), "{raw:?}");
    let rows = pocaduck_edge_conformance::decode::npy_rows(&dechunk(&raw[end + 4..]));
    assert_eq!(rows.len(), 100);
}

#[test]
fn metrics_with_an_address_of_their_own_are_served_there_alone() {
    let mut child = Command::new(bin())
        .args([
            "serve",
            "--addr",
            "127.0.0.1:0",
            "--metrics-addr",
            "127.0.0.1:0",
            "--data",
        ])
        .arg(dataset())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut line = || lines.next().unwrap().unwrap();
    let (api, metrics) = (line(), line());
    let server = Server {
        addr: api
            .strip_prefix("listening on http://")
            .unwrap()
            .to_string(),
        child,
    };
    let metrics = metrics.strip_prefix("metrics on ").unwrap().to_string();
    assert_eq!(
        client()
            .get(server.url("/v1/datasets"))
            .send()
            .unwrap()
            .status(),
        200
    );
    // Not beside the API, where its clients are.
    assert_eq!(
        client()
            .get(server.url("/metrics"))
            .send()
            .unwrap()
            .status(),
        404
    );
    let text = client().get(&metrics).send().unwrap().text().unwrap();
    assert!(
        text.contains(r#"pocaduck_edge_requests_total{route="datasets",status="200"} 1"#),
        "{text}"
    );
    // Nothing but the metrics there.
    let api_there = metrics.replace("/metrics", "/v1/datasets");
    assert_eq!(client().get(api_there).send().unwrap().status(), 404);
}
