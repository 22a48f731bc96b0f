//! What brokers ask the active controller (the quorum leader) and what it
//! answers, as carried by the controller transport: registration and
//! heartbeats (Kafka's BrokerRegistration / BrokerHeartbeat), and admin
//! changes sent to another broker, forwarded for the leader to make (as
//! Kafka's brokers forward admin requests to the active controller). Encoding in one place, round-trip tests below.

use bytes::{Buf, BufMut};

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerRequest {
    /// An admin change (encoded by the broker's controller) for the leader
    /// to validate against its metadata and commit.
    Change {
        payload: Vec<u8>,
    },
    Register {
        id: i32,
        host: String,
        port: u16,
        incarnation: uuid::Uuid,
    },
    Heartbeat {
        id: i32,
        incarnation: uuid::Uuid,
    },
    DescribeQuorum,
    /// A block of producer ids for this broker.
    AllocateProducerIds,
    /// SIGTERM: move leadership off this broker and take it out of the
    /// ISRs before it exits (Kafka's controlled shutdown; KRaft asks for it
    /// in a heartbeat with WantShutDown).
    ControlledShutdown {
        id: i32,
        incarnation: uuid::Uuid,
    },
}

/// One voter in a DescribeQuorum answer; timestamps in ms since the epoch,
/// -1 when unknown.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VoterReport {
    pub id: i32,
    pub log_end: i64,
    pub last_fetch_ms: i64,
    pub last_caught_up_ms: i64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControllerReply {
    /// A change made: the metadata version that holds it, and per item its
    /// Kafka error code and message, if it failed.
    Applied {
        index: u64,
        errors: Vec<Option<(i16, String)>>,
    },
    /// Kafka's error code and a message.
    Failed {
        code: i16,
        message: String,
    },
    /// The heartbeat's broker (incarnation) is not registered: register.
    UnknownBroker,
    Ok,
    /// The first id of an allocated block.
    ProducerIds {
        start: i64,
    },
    Quorum {
        leader: i32,
        epoch: i32,
        high_watermark: i64,
        voters: Vec<VoterReport>,
    },
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("malformed controller message")]
pub struct Malformed;

fn put_str(b: &mut Vec<u8>, s: &str) {
    b.put_u32(s.len() as u32);
    b.put_slice(s.as_bytes());
}

fn get_str(b: &mut &[u8]) -> Result<String, Malformed> {
    let n = get(b, 4)?.get_u32() as usize;
    let s = String::from_utf8(get(b, n)?.to_vec()).map_err(|_| Malformed)?;
    Ok(s)
}

/// The next `n` bytes, consumed.
fn get<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8], Malformed> {
    if b.len() < n {
        return Err(Malformed);
    }
    let (head, rest) = b.split_at(n);
    *b = rest;
    Ok(head)
}

fn get_uuid(b: &mut &[u8]) -> Result<uuid::Uuid, Malformed> {
    uuid::Uuid::from_slice(get(b, 16)?).map_err(|_| Malformed)
}

impl ControllerRequest {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            ControllerRequest::Change { payload } => {
                b.put_u8(1);
                b.put_slice(payload);
            }
            ControllerRequest::Register {
                id,
                host,
                port,
                incarnation,
            } => {
                b.put_u8(2);
                b.put_i32(*id);
                put_str(&mut b, host);
                b.put_u16(*port);
                b.put_slice(incarnation.as_bytes());
            }
            ControllerRequest::Heartbeat { id, incarnation } => {
                b.put_u8(3);
                b.put_i32(*id);
                b.put_slice(incarnation.as_bytes());
            }
            ControllerRequest::DescribeQuorum => b.put_u8(4),
            ControllerRequest::AllocateProducerIds => b.put_u8(5),
            ControllerRequest::ControlledShutdown { id, incarnation } => {
                b.put_u8(6);
                b.put_i32(*id);
                b.put_slice(incarnation.as_bytes());
            }
        }
        b
    }

    pub fn decode(mut b: &[u8]) -> Result<Self, Malformed> {
        let b = &mut b;
        let r = match get(b, 1)?[0] {
            1 => ControllerRequest::Change {
                payload: std::mem::take(b).to_vec(),
            },
            2 => ControllerRequest::Register {
                id: get(b, 4)?.get_i32(),
                host: get_str(b)?,
                port: get(b, 2)?.get_u16(),
                incarnation: get_uuid(b)?,
            },
            3 => ControllerRequest::Heartbeat {
                id: get(b, 4)?.get_i32(),
                incarnation: get_uuid(b)?,
            },
            4 => ControllerRequest::DescribeQuorum,
            5 => ControllerRequest::AllocateProducerIds,
            6 => ControllerRequest::ControlledShutdown {
                id: get(b, 4)?.get_i32(),
                incarnation: get_uuid(b)?,
            },
            _ => return Err(Malformed),
        };
        if !b.is_empty() {
            return Err(Malformed);
        }
        Ok(r)
    }
}

impl ControllerReply {
    pub fn encode(&self) -> Vec<u8> {
        let mut b = Vec::new();
        match self {
            ControllerReply::Applied { index, errors } => {
                b.put_u8(1);
                b.put_u64(*index);
                b.put_u32(errors.len() as u32);
                for e in errors {
                    match e {
                        Some((code, msg)) => {
                            b.put_u8(1);
                            b.put_i16(*code);
                            put_str(&mut b, msg);
                        }
                        None => b.put_u8(0),
                    }
                }
            }
            ControllerReply::Failed { code, message } => {
                b.put_u8(3);
                b.put_i16(*code);
                put_str(&mut b, message);
            }
            ControllerReply::UnknownBroker => b.put_u8(4),
            ControllerReply::Ok => b.put_u8(5),
            ControllerReply::ProducerIds { start } => {
                b.put_u8(7);
                b.put_i64(*start);
            }
            ControllerReply::Quorum {
                leader,
                epoch,
                high_watermark,
                voters,
            } => {
                b.put_u8(6);
                b.put_i32(*leader);
                b.put_i32(*epoch);
                b.put_i64(*high_watermark);
                b.put_u32(voters.len() as u32);
                for v in voters {
                    b.put_i32(v.id);
                    b.put_i64(v.log_end);
                    b.put_i64(v.last_fetch_ms);
                    b.put_i64(v.last_caught_up_ms);
                }
            }
        }
        b
    }

    pub fn decode(mut b: &[u8]) -> Result<Self, Malformed> {
        let b = &mut b;
        let r = match get(b, 1)?[0] {
            1 => {
                let index = get(b, 8)?.get_u64();
                let n = get(b, 4)?.get_u32() as usize;
                let mut errors = Vec::with_capacity(n.min(b.len()));
                for _ in 0..n {
                    errors.push(match get(b, 1)?[0] {
                        0 => None,
                        _ => Some((get(b, 2)?.get_i16(), get_str(b)?)),
                    });
                }
                ControllerReply::Applied { index, errors }
            }
            3 => ControllerReply::Failed {
                code: get(b, 2)?.get_i16(),
                message: get_str(b)?,
            },
            4 => ControllerReply::UnknownBroker,
            5 => ControllerReply::Ok,
            7 => ControllerReply::ProducerIds {
                start: get(b, 8)?.get_i64(),
            },
            6 => {
                let leader = get(b, 4)?.get_i32();
                let epoch = get(b, 4)?.get_i32();
                let high_watermark = get(b, 8)?.get_i64();
                let n = get(b, 4)?.get_u32() as usize;
                if b.len() < n.saturating_mul(28) {
                    return Err(Malformed);
                }
                let voters = (0..n)
                    .map(|_| VoterReport {
                        id: b.get_i32(),
                        log_end: b.get_i64(),
                        last_fetch_ms: b.get_i64(),
                        last_caught_up_ms: b.get_i64(),
                    })
                    .collect();
                ControllerReply::Quorum {
                    leader,
                    epoch,
                    high_watermark,
                    voters,
                }
            }
            _ => return Err(Malformed),
        };
        if !b.is_empty() {
            return Err(Malformed);
        }
        Ok(r)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_and_replies_round_trip() {
        let inc = uuid::Uuid::new_v4();
        for r in [
            ControllerRequest::Change {
                payload: vec![1, 2, 3],
            },
            ControllerRequest::Change { payload: vec![] },
            ControllerRequest::Register {
                id: 3,
                host: "127.0.0.1".into(),
                port: 9092,
                incarnation: inc,
            },
            ControllerRequest::Heartbeat {
                id: -1,
                incarnation: inc,
            },
            ControllerRequest::DescribeQuorum,
            ControllerRequest::AllocateProducerIds,
            ControllerRequest::ControlledShutdown {
                id: 2,
                incarnation: inc,
            },
        ] {
            let bytes = r.encode();
            assert_eq!(ControllerRequest::decode(&bytes), Ok(r.clone()));
            if !matches!(r, ControllerRequest::Change { .. }) {
                for cut in 0..bytes.len() {
                    assert_eq!(ControllerRequest::decode(&bytes[..cut]), Err(Malformed));
                }
            }
        }
        for r in [
            ControllerReply::Applied {
                index: 9,
                errors: vec![None, Some((36, "Topic 't' already exists.".into())), None],
            },
            ControllerReply::Applied {
                index: 9,
                errors: vec![],
            },
            ControllerReply::Failed {
                code: 41,
                message: "not controller".into(),
            },
            ControllerReply::UnknownBroker,
            ControllerReply::Ok,
            ControllerReply::ProducerIds { start: 3000 },
            ControllerReply::Quorum {
                leader: 2,
                epoch: 5,
                high_watermark: 40,
                voters: vec![
                    VoterReport {
                        id: 1,
                        log_end: 40,
                        last_fetch_ms: 1_700_000_000_000,
                        last_caught_up_ms: -1,
                    },
                    VoterReport {
                        id: 2,
                        log_end: 41,
                        last_fetch_ms: 1,
                        last_caught_up_ms: 2,
                    },
                ],
            },
        ] {
            let bytes = r.encode();
            assert_eq!(ControllerReply::decode(&bytes), Ok(r.clone()));
            for cut in 0..bytes.len() {
                assert_eq!(ControllerReply::decode(&bytes[..cut]), Err(Malformed));
            }
        }
        assert_eq!(ControllerReply::decode(&[99]), Err(Malformed));
    }
}
