//! `pocaduck-edge bench-relay`: a TCP relay that copies bytes both ways and does nothing
//! else. The VastDB benchmark reads the emulator's raw replies through it, which costs what
//! any proxy between a client and VastDB must pay on the same machine (one more receive and
//! one more send of every byte, on one more process), and so shows how much of the proxy's
//! cost is its own.

use std::net::SocketAddr;

use tokio::net::{TcpListener, TcpStream};

/// Bytes read from either side before writing them to the other: large enough that the
/// relay's system calls, not its buffer, set its pace.
const BUFFER: usize = 256 * 1024;

/// Accepts connections on `listen` and relays each to a new connection to `upstream`, on
/// one thread, until the process is stopped. Prints `listening on http://ADDR` once bound.
pub(crate) fn run(listen: SocketAddr, upstream: SocketAddr) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = TcpListener::bind(listen).await?;
        println!("listening on http://{}", listener.local_addr()?);
        relay(listener, upstream).await
    })
}

async fn relay(listener: TcpListener, upstream: SocketAddr) -> anyhow::Result<()> {
    loop {
        let (client, _) = listener.accept().await?;
        tokio::spawn(async move {
            if let Err(e) = relay_connection(client, upstream).await {
                tracing::debug!("relay: {e}");
            }
        });
    }
}

async fn relay_connection(mut client: TcpStream, upstream: SocketAddr) -> std::io::Result<()> {
    let mut server = TcpStream::connect(upstream).await?;
    client.set_nodelay(true)?;
    server.set_nodelay(true)?;
    tokio::io::copy_bidirectional_with_sizes(&mut client, &mut server, BUFFER, BUFFER).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    use super::*;

    /// A request goes through to the upstream unchanged and its whole answer comes back,
    /// for two connections at once.
    #[tokio::test]
    async fn relays_both_ways() {
        let upstream = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let upstream_addr = upstream.local_addr().unwrap();
        // The upstream answers each request (a length, then that many bytes) with those
        // bytes reversed and repeated 1000 times: more than one buffer's worth.
        tokio::spawn(async move {
            loop {
                let (mut socket, _) = upstream.accept().await.unwrap();
                tokio::spawn(async move {
                    let n = socket.read_u32().await.unwrap() as usize;
                    let mut request = vec![0; n];
                    socket.read_exact(&mut request).await.unwrap();
                    request.reverse();
                    for _ in 0..1000 {
                        socket.write_all(&request).await.unwrap();
                    }
                });
            }
        });
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay_addr = listener.local_addr().unwrap();
        tokio::spawn(relay(listener, upstream_addr));

        let ask = |request: Vec<u8>| async move {
            let mut socket = TcpStream::connect(relay_addr).await.unwrap();
            socket.write_u32(request.len() as u32).await.unwrap();
            socket.write_all(&request).await.unwrap();
            let mut answer = Vec::new();
            socket.read_to_end(&mut answer).await.unwrap();
            answer
        };
        let first: Vec<u8> = (0..=255).collect();
        let second: Vec<u8> = (0..1000u32).map(|i| (i * 7 % 251) as u8).collect();
        let both = async { tokio::join!(ask(first.clone()), ask(second.clone())) };
        let (a, b) = tokio::time::timeout(std::time::Duration::from_secs(10), both)
            .await
            .expect("the relay answers within 10 s");
        for (request, answer) in [(first, a), (second, b)] {
            let reversed: Vec<u8> = request.iter().rev().copied().collect();
            assert_eq!(answer, reversed.repeat(1000));
        }
    }
}
