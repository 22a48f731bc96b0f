//! `GET /metrics` over HTTP/1.x on `sluice.metrics.listener`, for Prometheus
//! and `sluice bench --broker-metrics`. One thread, off the shards, serving
//! one connection at a time (a scrape is one small request), each closed after
//! its answer; a client gets `METRICS_READ_TIMEOUT_MS` to send its request
//! head of at most `METRICS_REQUEST_MAX_BYTES`.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use super::BrokerMetrics;

/// Bound on a request's head (request line and headers).
pub const METRICS_REQUEST_MAX_BYTES: usize = 8 << 10;
/// How long a connection may take to send its request, and to take the answer.
pub const METRICS_READ_TIMEOUT_MS: u64 = 1_000;
/// How often the accept loop looks at the stop flag.
const STOP_POLL_MS: u64 = 100;

/// Binds `addr` (failing start-up if it cannot) and serves until `stop`.
pub fn start(
    addr: SocketAddr,
    metrics: Arc<BrokerMetrics>,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<(SocketAddr, JoinHandle<()>)> {
    let listener = TcpListener::bind(addr)
        .map_err(|e| anyhow::anyhow!("cannot listen for metrics on {addr}: {e}"))?;
    listener.set_nonblocking(true)?;
    let bound = listener.local_addr()?;
    let thread = std::thread::Builder::new()
        .name("sluice-metrics".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                match listener.accept() {
                    Ok((conn, peer)) => {
                        if let Err(e) = serve(conn, &metrics) {
                            tracing::debug!(%peer, error = %e, "metrics request failed");
                        }
                    }
                    Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                        std::thread::sleep(Duration::from_millis(STOP_POLL_MS));
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics listener: accept failed");
                        std::thread::sleep(Duration::from_millis(STOP_POLL_MS));
                    }
                }
            }
        })?;
    tracing::info!("metrics at http://{bound}/metrics");
    Ok((bound, thread))
}

fn serve(mut conn: TcpStream, metrics: &BrokerMetrics) -> std::io::Result<()> {
    conn.set_nonblocking(false)?;
    let timeout = Some(Duration::from_millis(METRICS_READ_TIMEOUT_MS));
    conn.set_read_timeout(timeout)?;
    conn.set_write_timeout(timeout)?;
    let mut head = Vec::with_capacity(1024);
    let mut buf = [0u8; 1024];
    let complete = loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") {
            break true;
        }
        if head.len() >= METRICS_REQUEST_MAX_BYTES {
            break false;
        }
        let n = conn.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        head.extend_from_slice(&buf[..n]);
    };
    let (status, body) = if !complete {
        (
            "431 Request Header Fields Too Large",
            "request head too large\n".to_string(),
        )
    } else {
        let line = head.split(|b| *b == b'\r').next().unwrap_or_default();
        let line = String::from_utf8_lossy(line);
        let mut parts = line.split(' ');
        match (parts.next(), parts.next()) {
            (Some("GET"), Some("/metrics")) => ("200 OK", metrics.render()),
            (Some("GET"), Some(_)) => ("404 Not Found", "only /metrics is served\n".into()),
            (Some(_), Some(_)) => ("405 Method Not Allowed", "only GET\n".into()),
            _ => ("400 Bad Request", "not an HTTP request\n".into()),
        }
    };
    let content_type = if status.starts_with("200") {
        "text/plain; version=0.0.4; charset=utf-8"
    } else {
        "text/plain; charset=utf-8"
    };
    write!(
        conn,
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    )?;
    conn.flush()?;
    // Whatever the client sent past what was read (a head too large) would
    // make the close a reset that can destroy the answer in flight: say we
    // are done, then read the rest (bounded) before closing.
    conn.shutdown(std::net::Shutdown::Write)?;
    let mut drained = 0;
    while drained < METRICS_REQUEST_MAX_BYTES {
        match conn.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    Ok(())
}

/// `GET /metrics` from `addr`: the body, or why not (for `sluice bench`).
pub fn scrape(addr: &str, timeout: Duration) -> Result<String, String> {
    use std::net::ToSocketAddrs;
    let sock = addr
        .to_socket_addrs()
        .map_err(|e| format!("{addr}: {e}"))?
        .next()
        .ok_or_else(|| format!("{addr}: no address"))?;
    let mut conn =
        TcpStream::connect_timeout(&sock, timeout).map_err(|e| format!("{addr}: {e}"))?;
    conn.set_read_timeout(Some(timeout))
        .map_err(|e| e.to_string())?;
    conn.write_all(
        format!("GET /metrics HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").as_bytes(),
    )
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut response = String::new();
    conn.read_to_string(&mut response)
        .map_err(|e| format!("{addr}: {e}"))?;
    let (head, body) = response
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr}: not an HTTP response"))?;
    let status = head.lines().next().unwrap_or_default();
    if !status.contains(" 200 ") {
        return Err(format!("{addr}: {status}"));
    }
    Ok(body.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(addr: SocketAddr, raw: &[u8]) -> String {
        let mut c = TcpStream::connect(addr).unwrap();
        c.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        c.write_all(raw).unwrap();
        let mut s = String::new();
        c.read_to_string(&mut s).unwrap();
        s
    }

    #[test]
    fn serves_metrics_and_refuses_what_it_does_not_serve_then_stops() {
        let metrics = BrokerMetrics::new(1);
        metrics.shard(0).log_fdatasync.record_us(250);
        let stop = Arc::new(AtomicBool::new(false));
        let (addr, thread) = start(
            "127.0.0.1:0".parse().unwrap(),
            metrics.clone(),
            stop.clone(),
        )
        .unwrap();

        let body = scrape(&addr.to_string(), Duration::from_secs(5)).unwrap();
        let sync =
            crate::metrics::parse_histogram(&body, crate::metrics::LOG_FDATASYNC, "").unwrap();
        assert_eq!(sync.count(), 1);

        let r = request(addr, b"GET /other HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 404 "), "{r}");
        let r = request(addr, b"POST /metrics HTTP/1.1\r\n\r\n");
        assert!(r.starts_with("HTTP/1.1 405 "), "{r}");
        let mut big = b"GET /metrics HTTP/1.1\r\nX: ".to_vec();
        big.resize(METRICS_REQUEST_MAX_BYTES + 10, b'a');
        let r = request(addr, &big);
        assert!(r.starts_with("HTTP/1.1 431 "), "{r}");
        // A client that sends half a request and waits does not keep the
        // next one out for longer than the read timeout.
        let _silent = {
            let mut c = TcpStream::connect(addr).unwrap();
            c.write_all(b"GET /met").unwrap();
            c
        };
        assert!(scrape(&addr.to_string(), Duration::from_secs(5)).is_ok());
        assert!(scrape(&addr.to_string(), Duration::from_secs(5))
            .unwrap()
            .contains("sluice_log_fdatasync_seconds_count 1\n"));

        stop.store(true, Ordering::Relaxed);
        thread.join().unwrap();
        assert!(
            TcpStream::connect(addr).is_err(),
            "still listening after stop"
        );
    }
}
