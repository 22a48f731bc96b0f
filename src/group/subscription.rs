//! Reading the "consumer" protocol's subscription metadata (the broker only
//! needs the topic list, for OffsetDelete and describe output).

use bytes::Bytes;
use kafka_protocol::messages::ConsumerProtocolSubscription;
use kafka_protocol::protocol::Decodable;

/// Topics in a ConsumerProtocolSubscription (version-prefixed); `None` when
/// the bytes are not one.
pub fn topics(metadata: &Bytes) -> Option<Vec<String>> {
    let mut b = metadata.clone();
    if b.len() < 2 {
        return None;
    }
    let version = i16::from_be_bytes([b[0], b[1]]);
    let _ = bytes::Buf::get_i16(&mut b);
    // Newer versions only add fields at the end; read them as the highest
    // version the codec knows.
    let s = ConsumerProtocolSubscription::decode(&mut b, version.clamp(0, 3)).ok()?;
    Some(s.topics.into_iter().map(|t| t.to_string()).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::BufMut;
    use kafka_protocol::protocol::{Encodable, StrBytes};

    #[test]
    fn reads_topics_of_an_encoded_subscription() {
        let s = ConsumerProtocolSubscription::default().with_topics(vec![
            StrBytes::from_static_str("a"),
            StrBytes::from_static_str("b"),
        ]);
        let mut buf = bytes::BytesMut::new();
        buf.put_i16(1);
        s.encode(&mut buf, 1).unwrap();
        assert_eq!(topics(&buf.freeze()).unwrap(), vec!["a", "b"]);
        assert!(topics(&Bytes::from_static(b"\x00")).is_none());
    }
}
