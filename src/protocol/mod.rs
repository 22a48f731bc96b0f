//! Wire protocol: request decoding, zero-copy response encoding, the list of
//! APIs we serve, and the client side of framing. Codecs come from
//! `kafka-protocol`; no I/O here.

pub mod client;
pub mod request;
pub mod response;
pub mod versions;

pub use kafka_protocol::messages::{ApiKey, RequestHeader, RequestKind, ResponseKind};
pub use kafka_protocol::ResponseError;
