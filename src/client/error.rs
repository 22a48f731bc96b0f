//! Errors returned by the blocking Kafka client.

use kafka_protocol::ResponseError;

/// Result alias used throughout the client.
pub type Result<T> = std::result::Result<T, ClientError>;

/// Everything that can go wrong while talking to a broker.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClientError {
    /// The TCP connection could not be established.
    #[error("cannot connect to broker at {addr}: {reason}")]
    Connect { addr: String, reason: String },
    /// A read or write on an established connection failed.
    #[error("connection to broker at {addr} failed: {reason}")]
    Io { addr: String, reason: String },
    /// The broker did not answer within the request timeout.
    #[error("request {api} to broker at {addr} timed out after {timeout_ms} ms")]
    Timeout {
        addr: String,
        api: String,
        timeout_ms: u64,
    },
    /// The broker and this client share no version of an API.
    #[error("broker at {addr} does not support {api} {detail}")]
    Unsupported {
        addr: String,
        api: String,
        detail: String,
    },
    /// The broker answered with a Kafka error code.
    #[error("{context}: {}{}", error_name(*.code), .message.as_deref().map(|m| format!(" ({m})")).unwrap_or_default())]
    Kafka {
        context: String,
        code: ResponseError,
        message: Option<String>,
    },
    /// The bytes on the wire made no sense (or encoding failed locally).
    #[error("protocol error with broker at {addr}: {reason}")]
    Protocol { addr: String, reason: String },
    /// A request that cannot be answered from what the cluster told us.
    #[error("{0}")]
    Other(String),
}

impl ClientError {
    /// The Kafka error code carried by this error, if any.
    pub fn kafka_code(&self) -> Option<ResponseError> {
        match self {
            ClientError::Kafka { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The broker-supplied error message, if any.
    pub fn kafka_message(&self) -> Option<&str> {
        match self {
            ClientError::Kafka { message, .. } => message.as_deref(),
            _ => None,
        }
    }

    /// True when the connection this came from can no longer be trusted.
    pub(crate) fn breaks_connection(&self) -> bool {
        matches!(
            self,
            ClientError::Io { .. } | ClientError::Timeout { .. } | ClientError::Protocol { .. }
        )
    }
}

/// Turns a non-zero Kafka error code into an error, with `context` naming the subject.
pub fn check_code(
    code: i16,
    message: Option<&str>,
    context: impl FnOnce() -> String,
) -> Result<()> {
    match ResponseError::try_from_code(code) {
        None => Ok(()),
        Some(code) => Err(ClientError::Kafka {
            context: context(),
            code,
            message: message.filter(|m| !m.is_empty()).map(str::to_owned),
        }),
    }
}

/// Kafka's canonical name for an error, e.g. `UNKNOWN_TOPIC_OR_PARTITION`.
pub fn error_name(code: ResponseError) -> String {
    if let ResponseError::Unknown(c) = code {
        return format!("UNKNOWN_ERROR_CODE_{c}");
    }
    let camel = format!("{code:?}");
    let mut out = String::with_capacity(camel.len() + 8);
    for (i, ch) in camel.chars().enumerate() {
        if ch.is_ascii_uppercase() && i > 0 {
            out.push('_');
        }
        out.push(ch.to_ascii_uppercase());
    }
    out
}

/// `io::Error` text without the trailing `(os error N)`.
pub(crate) fn io_reason(err: &std::io::Error) -> String {
    let text = err.to_string();
    match text.rfind(" (os error ") {
        Some(idx) => text[..idx].to_string(),
        None => text,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_kafka_style() {
        assert_eq!(
            error_name(ResponseError::UnknownTopicOrPartition),
            "UNKNOWN_TOPIC_OR_PARTITION"
        );
        assert_eq!(
            error_name(ResponseError::TopicAlreadyExists),
            "TOPIC_ALREADY_EXISTS"
        );
        assert_eq!(
            error_name(ResponseError::Unknown(999)),
            "UNKNOWN_ERROR_CODE_999"
        );
    }

    #[test]
    fn check_code_formats() {
        assert!(check_code(0, None, || "x".into()).is_ok());
        let err = check_code(3, Some("nope"), || "topic 'a'".into()).unwrap_err();
        assert_eq!(
            err.to_string(),
            "topic 'a': UNKNOWN_TOPIC_OR_PARTITION (nope)"
        );
        assert_eq!(
            err.kafka_code(),
            Some(ResponseError::UnknownTopicOrPartition)
        );
    }

    #[test]
    fn io_reason_strips_os_error() {
        let e = std::io::Error::from_raw_os_error(111);
        assert_eq!(io_reason(&e), "Connection refused");
    }
}
