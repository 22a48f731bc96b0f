//! The controller transport: how raft-rs messages and controller requests
//! travel between the voters, over the controller listener.
//!
//! Every node dials every other voter once and only writes on that
//! connection; what a peer sends arrives on the connection the peer dialled.
//! So a request goes out on our connection and its reply comes back on the
//! peer's. Raft tolerates lost messages (it retries), so a peer's queue is
//! bounded and drops its oldest frame when full; requests time out at the
//! caller.
//!
//! Frames: `u32 length` (of what follows), `u8 kind`, then
//! - HELLO: `u64 node id`, `u32 len` + its controller address, `u32 n` +
//!   n × `u64 voter`, `u8 has cluster id` [+ `u32 len` + cluster id]: the
//!   first frame of a connection;
//! - RAFT: a raft-rs `Message` in protobuf;
//! - REQUEST / REPLY: `u64 request id`, then the payload (its meaning is
//!   the broker's).

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::net::SocketAddr;
use std::rc::Rc;
use std::time::Duration;

use bytes::{Buf, BufMut};
use protobuf::Message as _;
use raft::prelude::{Message, MessageType};

use crate::shard::net::Stream;
use crate::shard::notify::Notify;
use crate::shard::{self};

const HELLO: u8 = 1;
const RAFT: u8 = 2;
const REQUEST: u8 = 3;
const REPLY: u8 = 4;

/// Frames waiting for a peer (raft retries what is dropped).
pub const MAX_QUEUED_FRAMES: usize = 4096;
const CONNECT_TIMEOUT_MS: u64 = 1_000;
const RECONNECT_MIN_MS: u64 = 50;
const RECONNECT_MAX_MS: u64 = 1_000;
/// How long an accepted connection may take to say who it is.
pub const HELLO_TIMEOUT_MS: u64 = 2_000;

#[derive(Debug, PartialEq)]
pub enum Frame {
    Hello {
        node_id: u64,
        /// Where the sender's controller listener is (as configured).
        addr: String,
        voters: Vec<u64>,
        cluster_id: Option<String>,
    },
    Raft(Message),
    Request {
        id: u64,
        payload: Vec<u8>,
    },
    Reply {
        id: u64,
        payload: Vec<u8>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FrameError {
    #[error("controller frame truncated")]
    Truncated,
    #[error("unknown controller frame kind {0}")]
    Kind(u8),
    #[error("bad raft message: {0}")]
    Raft(String),
    #[error("controller frame of {0} bytes exceeds the limit of {1}")]
    TooLarge(usize, usize),
}

impl Frame {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = vec![0u8; 4];
        match self {
            Frame::Hello {
                node_id,
                addr,
                voters,
                cluster_id,
            } => {
                b.put_u8(HELLO);
                b.put_u64(*node_id);
                b.put_u32(addr.len() as u32);
                b.put_slice(addr.as_bytes());
                b.put_u32(voters.len() as u32);
                for v in voters {
                    b.put_u64(*v);
                }
                match cluster_id {
                    Some(c) => {
                        b.put_u8(1);
                        b.put_u32(c.len() as u32);
                        b.put_slice(c.as_bytes());
                    }
                    None => b.put_u8(0),
                }
            }
            Frame::Raft(m) => {
                b.put_u8(RAFT);
                b.extend(m.write_to_bytes().expect("raft messages encode"));
            }
            Frame::Request { id, payload } | Frame::Reply { id, payload } => {
                b.put_u8(if matches!(self, Frame::Request { .. }) {
                    REQUEST
                } else {
                    REPLY
                });
                b.put_u64(*id);
                b.put_slice(payload);
            }
        }
        let len = (b.len() - 4) as u32;
        b[..4].copy_from_slice(&len.to_be_bytes());
        b
    }

    /// Decode a frame's body (what follows its length).
    pub fn decode(mut b: &[u8]) -> Result<Frame, FrameError> {
        let need = |b: &[u8], n: usize| {
            if b.len() < n {
                Err(FrameError::Truncated)
            } else {
                Ok(())
            }
        };
        need(b, 1)?;
        let kind = b.get_u8();
        match kind {
            HELLO => {
                need(b, 12)?;
                let node_id = b.get_u64();
                let n = b.get_u32() as usize;
                need(b, n)?;
                let addr = String::from_utf8_lossy(&b[..n]).into_owned();
                b.advance(n);
                need(b, 4)?;
                let n = b.get_u32() as usize;
                need(b, n.saturating_mul(8))?;
                let voters = (0..n).map(|_| b.get_u64()).collect();
                need(b, 1)?;
                let cluster_id = match b.get_u8() {
                    0 => None,
                    _ => {
                        need(b, 4)?;
                        let n = b.get_u32() as usize;
                        need(b, n)?;
                        Some(String::from_utf8_lossy(&b[..n]).into_owned())
                    }
                };
                Ok(Frame::Hello {
                    node_id,
                    addr,
                    voters,
                    cluster_id,
                })
            }
            RAFT => Message::parse_from_bytes(b)
                .map(Frame::Raft)
                .map_err(|e| FrameError::Raft(e.to_string())),
            REQUEST | REPLY => {
                need(b, 8)?;
                let id = b.get_u64();
                let payload = b.to_vec();
                Ok(if kind == REQUEST {
                    Frame::Request { id, payload }
                } else {
                    Frame::Reply { id, payload }
                })
            }
            k => Err(FrameError::Kind(k)),
        }
    }
}

/// Read one frame, refusing one longer than `max_bytes`.
pub async fn read_frame(s: &mut Stream, max_bytes: usize) -> std::io::Result<Frame> {
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await?;
    let len = u32::from_be_bytes(len) as usize;
    if len > max_bytes {
        return Err(std::io::Error::other(FrameError::TooLarge(len, max_bytes)));
    }
    let mut body = vec![0u8; len];
    s.read_exact(&mut body).await?;
    Frame::decode(&body).map_err(std::io::Error::other)
}

/// What happened to a frame a peer's sender took off its queue.
pub enum Sent {
    Ok,
    Failed,
}

/// One frame queued for a peer; a snapshot's outcome goes back to raft-rs.
pub struct Outgoing {
    pub bytes: Vec<u8>,
    pub snapshot: bool,
}

/// The outbound side of one peer: a bounded queue and its sender task.
pub struct Peer {
    pub id: u64,
    pub addr: SocketAddr,
    queue: RefCell<VecDeque<Outgoing>>,
    ready: Notify,
    pub connected: Cell<bool>,
    dropped: Cell<u64>,
}

impl Peer {
    pub fn new(id: u64, addr: SocketAddr) -> Rc<Peer> {
        Rc::new(Peer {
            id,
            addr,
            queue: Default::default(),
            ready: Notify::new(),
            connected: Cell::new(false),
            dropped: Cell::new(0),
        })
    }

    pub fn enqueue(&self, f: &Frame) {
        let snapshot = matches!(f, Frame::Raft(m) if m.get_msg_type() == MessageType::MsgSnapshot);
        let mut q = self.queue.borrow_mut();
        if q.len() >= MAX_QUEUED_FRAMES {
            q.pop_front();
            let n = self.dropped.get() + 1;
            self.dropped.set(n);
            if n.is_power_of_two() {
                tracing::warn!(
                    peer = self.id,
                    dropped = n,
                    "controller queue to peer full; oldest frames dropped (raft resends)"
                );
            }
        }
        q.push_back(Outgoing {
            bytes: f.encode(),
            snapshot,
        });
        self.ready.notify_all();
    }

    /// Connect, say hello, and send queued frames until the connection
    /// fails; then again, with back-off. `on_sent` learns the fate of
    /// snapshots and of the connection (raft-rs wants both).
    pub async fn run(self: Rc<Self>, hello: impl Fn() -> Frame, on_sent: impl Fn(u64, bool, Sent)) {
        let mut backoff = RECONNECT_MIN_MS;
        loop {
            let conn = Stream::connect(self.addr, Duration::from_millis(CONNECT_TIMEOUT_MS)).await;
            let mut s = match conn {
                Ok(s) => s,
                Err(_) => {
                    on_sent(self.id, false, Sent::Failed);
                    shard::sleep(Duration::from_millis(backoff)).await;
                    backoff = (backoff * 2).min(RECONNECT_MAX_MS);
                    continue;
                }
            };
            let _ = s.set_nodelay(true);
            if s.write_all(&hello().encode()).await.is_err() {
                continue;
            }
            self.connected.set(true);
            backoff = RECONNECT_MIN_MS;
            tracing::debug!(peer = self.id, addr = %self.addr, "controller connection up");
            loop {
                let ready = self.ready.notified();
                let next = self.queue.borrow_mut().pop_front();
                let Some(out) = next else {
                    ready.await;
                    continue;
                };
                let ok = s.write_all(&out.bytes).await.is_ok();
                if out.snapshot {
                    on_sent(self.id, true, if ok { Sent::Ok } else { Sent::Failed });
                }
                if !ok {
                    on_sent(self.id, false, Sent::Failed);
                    break;
                }
            }
            self.connected.set(false);
            tracing::debug!(peer = self.id, "controller connection lost; reconnecting");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_and_bad_ones_are_errors() {
        let mut m = Message::default();
        m.set_msg_type(MessageType::MsgAppend);
        m.from = 1;
        m.to = 2;
        m.term = 9;
        m.commit = 4;
        for f in [
            Frame::Hello {
                node_id: 3,
                addr: "127.0.0.1:9093".into(),
                voters: vec![1, 2, 3],
                cluster_id: Some("abc".into()),
            },
            Frame::Hello {
                node_id: 1,
                addr: String::new(),
                voters: vec![1],
                cluster_id: None,
            },
            Frame::Raft(m),
            Frame::Request {
                id: 7,
                payload: b"ask".to_vec(),
            },
            Frame::Reply {
                id: 7,
                payload: vec![],
            },
        ] {
            let bytes = f.encode();
            let len = u32::from_be_bytes(bytes[..4].try_into().unwrap()) as usize;
            assert_eq!(len, bytes.len() - 4);
            assert_eq!(Frame::decode(&bytes[4..]).unwrap(), f);
        }
        assert_eq!(Frame::decode(&[9]), Err(FrameError::Kind(9)));
        assert_eq!(Frame::decode(&[]), Err(FrameError::Truncated));
        // A hello claiming more voters than it carries.
        let mut h = vec![HELLO];
        h.extend(1u64.to_be_bytes());
        h.extend(0u32.to_be_bytes());
        h.extend(u32::MAX.to_be_bytes());
        assert_eq!(Frame::decode(&h), Err(FrameError::Truncated));
        assert!(matches!(
            Frame::decode(&[RAFT, 0xff, 0xff]),
            Err(FrameError::Raft(_))
        ));
    }
}
