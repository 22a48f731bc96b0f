//! Listeners and connections: framing, pipelining with in-order responses,
//! limits on frame size, connections and requests in flight.

use std::cell::Cell;
use std::rc::Rc;

use bytes::BytesMut;
use futures::{SinkExt, StreamExt};

use crate::broker::State;
use crate::protocol::request;
use crate::protocol::response::{Response, Segment};
use crate::shard::{self, net::Listener};

pub fn listen(state: &State) -> std::io::Result<Listener> {
    Listener::bind_reuseport(state.cfg.listener, 1024)
}

/// Accept connections on this shard until the task is dropped.
pub async fn serve(listener: Listener, state: State) {
    let open = Rc::new(Cell::new(0usize));
    loop {
        let stream = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "accept failed");
                shard::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if open.get() >= state.cfg.max_connections_per_shard {
            tracing::warn!(
                limit = state.cfg.max_connections_per_shard,
                "connection refused: max.connections reached on this shard"
            );
            continue;
        }
        let _ = stream.set_nodelay(true);
        open.set(open.get() + 1);
        let (state, open) = (state.clone(), open.clone());
        shard::spawn(async move {
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            let peer_rc: Rc<str> = Rc::from(peer.as_str());
            if let Err(reason) = connection(stream, state, peer_rc).await {
                tracing::info!(peer, %reason, "closing connection");
            }
            open.set(open.get() - 1);
        })
        .detach();
    }
}

/// Why a connection ended (other than the peer closing it).
#[derive(Debug, thiserror::Error)]
enum Closed {
    #[error("I/O: {0}")]
    Io(#[from] std::io::Error),
    #[error("frame of {size} bytes refused (socket.request.max.bytes = {max})")]
    TooLarge { size: i64, max: usize },
    #[error("invalid frame size {0}")]
    BadSize(i32),
    #[error("idle for {0} ms (connections.max.idle.ms)")]
    Idle(u64),
    #[error("request not complete {0} ms after it began (sluice.request.read.timeout.ms)")]
    Stalled(u64),
    #[error("{0}")]
    Request(#[from] request::RequestError),
    #[error("unsupported {api:?} version {version}")]
    Unsupported {
        api: crate::protocol::ApiKey,
        version: i16,
    },
}

async fn connection(stream: shard::net::Stream, state: State, peer: Rc<str>) -> Result<(), Closed> {
    let (mut rd, mut wr) = stream.split();
    // Responses leave in request order: the reader queues each request's task,
    // the writer awaits them in that order. The queue bound is the in-flight
    // limit; reading pauses while it is full.
    // Each request carries when it was read, for its API's latency histogram.
    type Queued = (
        std::time::Instant,
        crate::protocol::ApiKey,
        shard::Task<Option<Response>>,
    );
    let (mut tx, mut rx) =
        futures::channel::mpsc::channel::<Queued>(state.cfg.max_inflight_requests_per_connection);
    let metrics = state.metrics.clone();
    let writer = shard::spawn(async move {
        while let Some((read_at, api, task)) = rx.next().await {
            if let Some(resp) = task.await {
                write_response(&mut wr, resp).await?;
            }
            metrics.request(api, read_at.elapsed());
        }
        Ok::<(), std::io::Error>(())
    });
    let idle_ms = state.cfg.connections_max_idle_ms;
    let read_ms = state.cfg.request_read_timeout_ms;
    let idle = std::time::Duration::from_millis(idle_ms);
    let read_timeout = std::time::Duration::from_millis(read_ms);
    let read_result = async {
        loop {
            // Idle until the first byte of the next request; from then on
            // the whole request must come within the read timeout. (A read
            // dropped by a timeout may lose bytes, so the connection closes.)
            let mut size = [0u8; 4];
            let got = match shard::timeout(idle, rd.read(&mut size)).await {
                None => return Err(Closed::Idle(idle_ms)),
                Some(Ok(0)) => return Ok(()),
                Some(Ok(n)) => n,
                Some(Err(e)) => return Err(e.into()),
            };
            if got < size.len() {
                match shard::timeout(read_timeout, rd.read_exact(&mut size[got..])).await {
                    None => return Err(Closed::Stalled(read_ms)),
                    Some(Ok(())) => {}
                    Some(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
                    Some(Err(e)) => return Err(e.into()),
                }
            }
            let size = i32::from_be_bytes(size);
            if size < 0 {
                return Err(Closed::BadSize(size));
            }
            if size as usize > state.cfg.socket_request_max_bytes {
                return Err(Closed::TooLarge {
                    size: size as i64,
                    max: state.cfg.socket_request_max_bytes,
                });
            }
            // The frame's bytes count against this shard's request memory
            // until the handler is done with them; while it is used up, this
            // connection reads nothing more (the client's sends back up in TCP).
            let permit = state.request_memory.take(size as usize).await;
            let mut frame = BytesMut::zeroed(size as usize);
            shard::timeout(read_timeout, rd.read_exact(&mut frame))
                .await
                .ok_or(Closed::Stalled(read_ms))??;
            let read_at = std::time::Instant::now();
            let mut parsed = request::parse_header(frame.freeze())?;
            let (api, version) = (parsed.api, parsed.header.request_api_version);
            let supported = crate::protocol::versions::is_supported(api, version);
            if api != crate::protocol::ApiKey::ApiVersions && !supported {
                // Kafka closes the connection: a response in an unknown version
                // could not be encoded for the client anyway.
                return Err(Closed::Unsupported { api, version });
            }
            // Only an ApiVersions of a version we do not know goes on without a
            // body: it is answered with UNSUPPORTED_VERSION in v0.
            let body = if supported {
                Some(request::decode_body(&mut parsed)?)
            } else {
                None
            };
            let (st, peer) = (state.clone(), peer.clone());
            let header = parsed.header;
            let task = shard::spawn(async move {
                crate::handler::handle(st, header, api, body, peer, permit).await
            });
            if tx.send((read_at, api, task)).await.is_err() {
                return Ok(());
            }
        }
    }
    .await;
    drop(tx);
    let write_result = writer.await;
    read_result?;
    write_result?;
    Ok(())
}

async fn write_response(wr: &mut shard::net::WriteHalf, resp: Response) -> std::io::Result<()> {
    let pieces: Vec<&[u8]> = resp
        .segments
        .iter()
        .map(|seg| match seg {
            Segment::Encoded(b) => &b[..],
            Segment::Records(c) => c.as_slice(),
        })
        .collect();
    wr.write_all_vectored(&pieces).await?;
    wr.flush().await
}
