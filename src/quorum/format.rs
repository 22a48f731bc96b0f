//! On-disk formats of the metadata quorum's raft storage, with their
//! round-trip and torn-tail tests beside them.
//!
//! - `raft-entries.log`: raft entries, each framed as
//!   `u32 length | u32 CRC32C(payload) | payload` (big-endian), the payload
//!   being raft-rs' protobuf `Entry`. A crash leaves at worst a torn last
//!   frame, which the scan reports so the caller cuts it.
//! - `raft-state`: the hard state and conf state, as one frame holding
//!   `u32 length | HardState | ConfState`, replaced atomically.
//! - `<20-digit index>-<10-digit term>.checkpoint`: a snapshot (Kafka's
//!   snapshot file naming), one frame holding the protobuf `Snapshot`.

use protobuf::Message as _;
use raft::prelude::{ConfState, Entry, HardState, Snapshot};

pub const ENTRIES_FILE: &str = "raft-entries.log";
pub const STATE_FILE: &str = "raft-state";
pub const FRAME_HEADER_BYTES: usize = 8;
/// No frame is larger: a length beyond it is garbage, not a huge entry.
pub const MAX_FRAME_BYTES: usize = 64 << 20;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("truncated frame: {have} bytes, need {need}")]
    Truncated { have: usize, need: usize },
    #[error("frame length {0} is out of range")]
    BadLength(u32),
    #[error("frame CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    Crc { stored: u32, computed: u32 },
    #[error("undecodable payload: {0}")]
    Decode(String),
}

/// Frame `payload`.
pub fn encode_frame(payload: &[u8]) -> Vec<u8> {
    let mut b = Vec::with_capacity(FRAME_HEADER_BYTES + payload.len());
    b.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    b.extend_from_slice(&crc32c::crc32c(payload).to_be_bytes());
    b.extend_from_slice(payload);
    b
}

/// The payload of the frame at the start of `buf`, and the frame's length.
pub fn decode_frame(buf: &[u8]) -> Result<(&[u8], usize), FrameError> {
    if buf.len() < FRAME_HEADER_BYTES {
        return Err(FrameError::Truncated {
            have: buf.len(),
            need: FRAME_HEADER_BYTES,
        });
    }
    let len = u32::from_be_bytes(buf[..4].try_into().unwrap());
    // Nothing written here is empty (an entry has an index >= 1), so a zero
    // length is zero fill, not a frame.
    if len == 0 || len as usize > MAX_FRAME_BYTES {
        return Err(FrameError::BadLength(len));
    }
    let total = FRAME_HEADER_BYTES + len as usize;
    if buf.len() < total {
        return Err(FrameError::Truncated {
            have: buf.len(),
            need: total,
        });
    }
    let stored = u32::from_be_bytes(buf[4..8].try_into().unwrap());
    let payload = &buf[FRAME_HEADER_BYTES..total];
    let computed = crc32c::crc32c(payload);
    if stored != computed {
        return Err(FrameError::Crc { stored, computed });
    }
    Ok((payload, total))
}

pub fn encode_entry(e: &Entry) -> Vec<u8> {
    encode_frame(&e.write_to_bytes().expect("an Entry always encodes"))
}

/// Every valid entry frame of `buf` with its byte position, and where the
/// valid part ends with the reason it stopped there (None: at the end).
pub fn scan_entries(buf: &[u8]) -> (Vec<(u64, Entry)>, usize, Option<FrameError>) {
    let mut out = Vec::new();
    let mut at = 0;
    while at < buf.len() {
        let (payload, len) = match decode_frame(&buf[at..]) {
            Ok(x) => x,
            Err(e) => return (out, at, Some(e)),
        };
        match Entry::parse_from_bytes(payload) {
            Ok(e) => out.push((at as u64, e)),
            Err(e) => return (out, at, Some(FrameError::Decode(e.to_string()))),
        }
        at += len;
    }
    (out, at, None)
}

pub fn encode_state(hs: &HardState, cs: &ConfState) -> Vec<u8> {
    let hs = hs.write_to_bytes().expect("a HardState always encodes");
    let cs = cs.write_to_bytes().expect("a ConfState always encodes");
    let mut payload = Vec::with_capacity(4 + hs.len() + cs.len());
    payload.extend_from_slice(&(hs.len() as u32).to_be_bytes());
    payload.extend_from_slice(&hs);
    payload.extend_from_slice(&cs);
    encode_frame(&payload)
}

pub fn decode_state(buf: &[u8]) -> Result<(HardState, ConfState), FrameError> {
    let (p, _) = decode_frame(buf)?;
    let bad = |e: String| FrameError::Decode(e);
    if p.len() < 4 {
        return Err(bad("state shorter than its header".into()));
    }
    let n = u32::from_be_bytes(p[..4].try_into().unwrap()) as usize;
    if 4 + n > p.len() {
        return Err(bad("hard state longer than the frame".into()));
    }
    let hs = HardState::parse_from_bytes(&p[4..4 + n]).map_err(|e| bad(e.to_string()))?;
    let cs = ConfState::parse_from_bytes(&p[4 + n..]).map_err(|e| bad(e.to_string()))?;
    Ok((hs, cs))
}

pub fn encode_snapshot(s: &Snapshot) -> Vec<u8> {
    encode_frame(&s.write_to_bytes().expect("a Snapshot always encodes"))
}

pub fn decode_snapshot(buf: &[u8]) -> Result<Snapshot, FrameError> {
    let (p, _) = decode_frame(buf)?;
    Snapshot::parse_from_bytes(p).map_err(|e| FrameError::Decode(e.to_string()))
}

/// `<20-digit index>-<10-digit term>.checkpoint`, as Kafka names snapshots.
pub fn snapshot_file_name(index: u64, term: u64) -> String {
    format!("{index:020}-{term:010}.checkpoint")
}

pub fn parse_snapshot_file_name(name: &str) -> Option<(u64, u64)> {
    let stem = name.strip_suffix(".checkpoint")?;
    let (i, t) = stem.split_once('-')?;
    (i.len() == 20 && t.len() == 10).then_some(())?;
    Some((i.parse().ok()?, t.parse().ok()?))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(index: u64, term: u64, data: &[u8]) -> Entry {
        Entry {
            index,
            term,
            data: data.to_vec().into(),
            ..Default::default()
        }
    }

    #[test]
    fn entries_round_trip_and_a_torn_tail_is_found() {
        let mut buf = Vec::new();
        for i in 1..=3 {
            buf.extend(encode_entry(&entry(i, 2, format!("e{i}").as_bytes())));
        }
        let whole = buf.len();
        let (got, end, why) = scan_entries(&buf);
        assert_eq!((got.len(), end, why), (3, whole, None));
        assert_eq!(got[2].1, entry(3, 2, b"e3"));
        // Torn last frame: the first two stand, the scan says where it stopped.
        buf.extend(encode_entry(&entry(4, 2, b"e4")));
        buf.truncate(buf.len() - 3);
        let (got, end, why) = scan_entries(&buf);
        assert_eq!((got.len(), end), (3, whole));
        assert!(matches!(why, Some(FrameError::Truncated { .. })));
        // A flipped byte: CRC.
        let mut bad = buf[..whole].to_vec();
        bad[whole - 1] ^= 1;
        let (got, _, why) = scan_entries(&bad);
        assert_eq!(got.len(), 2);
        assert!(matches!(why, Some(FrameError::Crc { .. })));
        // Zero fill (a crash after the file grew) is never read as entries.
        let (got, end, why) = scan_entries(&[0u8; 64]);
        assert_eq!((got.len(), end), (0, 0));
        assert_eq!(why, Some(FrameError::BadLength(0)));
    }

    #[test]
    fn state_and_snapshot_round_trip() {
        let hs = HardState {
            term: 5,
            vote: 2,
            commit: 17,
            ..Default::default()
        };
        let cs = ConfState::from((vec![1, 2, 3], vec![]));
        assert_eq!(
            decode_state(&encode_state(&hs, &cs)).unwrap(),
            (hs, cs.clone())
        );
        let mut s = Snapshot {
            data: b"image".to_vec().into(),
            ..Default::default()
        };
        s.mut_metadata().index = 40;
        s.mut_metadata().term = 4;
        s.mut_metadata().set_conf_state(cs);
        assert_eq!(decode_snapshot(&encode_snapshot(&s)).unwrap(), s);
        assert!(decode_snapshot(&encode_snapshot(&s)[..10]).is_err());
        let name = snapshot_file_name(40, 4);
        assert_eq!(name, "00000000000000000040-0000000004.checkpoint");
        assert_eq!(parse_snapshot_file_name(&name), Some((40, 4)));
        assert_eq!(parse_snapshot_file_name("40-4.checkpoint"), None);
    }
}
