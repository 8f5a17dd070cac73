//! `HttpTarget` against a loopback listener that records each request line: paths go out
//! as written (dot segments and encoded slashes too, which reqwest's URL parser would
//! rewrite), under the base URL's path.

use std::sync::{Arc, Mutex};

use bytes::Bytes;
use pocaduck_edge_conformance::{HttpTarget, Target};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A listener on 127.0.0.1 answering `ok` to `count` requests (one per connection), and the
/// request lines it saw.
async fn recorder(count: usize) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let lines = Arc::new(Mutex::new(Vec::new()));
    let seen = lines.clone();
    tokio::spawn(async move {
        for _ in 0..count {
            let (mut socket, _) = listener.accept().await.unwrap();
            let mut head = Vec::new();
            let mut buf = [0u8; 1024];
            while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < 64 * 1024 {
                let n = socket.read(&mut buf).await.unwrap();
                if n == 0 {
                    break;
                }
                head.extend_from_slice(&buf[..n]);
            }
            let head = String::from_utf8_lossy(&head).into_owned();
            seen.lock()
                .unwrap()
                .push(head.lines().next().unwrap_or_default().to_owned());
            let answer = "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\n\r\nok";
            socket.write_all(answer.as_bytes()).await.unwrap();
            socket.shutdown().await.unwrap();
        }
    });
    (base, lines)
}

#[tokio::test]
async fn requests_go_out_as_written_under_the_base_path() {
    let paths = [
        "/v1/datasets/s/labels?limit=3",
        "/v1/datasets/s/files/../manifest.json",
        "/v1/datasets/s/files/%2e%2e/%2e%2e/Cargo.toml",
        "/v1/datasets/s/files//etc/passwd",
        "/v1/datasets/s/files/points%2F..%2Fmanifest.json",
    ];
    let (base, lines) = recorder(paths.len() * 2).await;
    for prefix in ["", "/prefix"] {
        let target = HttpTarget::new(&format!("{base}{prefix}/"));
        for path in paths {
            let request = http::Request::get(path).body(Bytes::new()).unwrap();
            let r = target.send(request).await;
            assert_eq!(r.status(), 200, "{path}");
            assert_eq!(&r.body()[..], b"ok");
        }
    }
    let expected: Vec<String> = ["", "/prefix"]
        .iter()
        .flat_map(|prefix| paths.map(|p| format!("GET {prefix}{p} HTTP/1.1")))
        .collect();
    assert_eq!(*lines.lock().unwrap(), expected);
}
