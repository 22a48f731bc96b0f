//! Converters between Connect data and record bytes, chosen by Kafka's class
//! names: `JsonConverter`, `StringConverter`, `ByteArrayConverter`.

use std::collections::BTreeMap;

use super::data::{Schema, Type, Value};
use super::json::JsonConverter;
use super::{ConfigError, DataError};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Converter {
    Json(JsonConverter),
    /// `org.apache.kafka.connect.storage.StringConverter` (UTF-8).
    String,
    /// `org.apache.kafka.connect.converters.ByteArrayConverter`.
    ByteArray,
}

/// Full class names, and the aliases Kafka's plugin loader also accepts
/// (simple name; simple name without `Converter`).
const CLASSES: [(&str, &str); 3] = [
    ("org.apache.kafka.connect.json.JsonConverter", "Json"),
    ("org.apache.kafka.connect.storage.StringConverter", "String"),
    (
        "org.apache.kafka.connect.converters.ByteArrayConverter",
        "ByteArray",
    ),
];

fn resolve(class: &str) -> Option<&'static str> {
    let class = class.trim();
    CLASSES.iter().find_map(|(full, short)| {
        let simple = full.rsplit('.').next().unwrap_or(full);
        (class == *full || class == simple || class == *short).then_some(*short)
    })
}

impl Converter {
    /// The converter configured under `prefix` (`key.converter` or
    /// `value.converter`) in `props`; its settings are the keys under
    /// `prefix.`, as Kafka passes them.
    pub fn configure(
        props: &BTreeMap<String, String>,
        prefix: &str,
    ) -> Result<Option<Converter>, ConfigError> {
        let Some(class) = props.get(prefix) else {
            return Ok(None);
        };
        let setting = |key: &str| props.get(&format!("{prefix}.{key}")).map(|v| v.trim());
        let converter = match resolve(class) {
            Some("Json") => {
                let schemas_enable = match setting("schemas.enable") {
                    None => true,
                    Some(v) if v.eq_ignore_ascii_case("true") => true,
                    Some(v) if v.eq_ignore_ascii_case("false") => false,
                    Some(v) => {
                        return Err(ConfigError(format!(
                            "Invalid value {v} for configuration {prefix}.schemas.enable: Expected value to be either true or false"
                        )))
                    }
                };
                Converter::Json(JsonConverter { schemas_enable })
            }
            Some("String") => {
                if let Some(enc) = setting("encoding") {
                    if !matches!(enc.to_ascii_uppercase().as_str(), "UTF8" | "UTF-8") {
                        return Err(ConfigError(format!(
                            "{prefix}.encoding={enc}: only UTF-8 is supported"
                        )));
                    }
                }
                Converter::String
            }
            Some(_) => Converter::ByteArray,
            None => {
                return Err(ConfigError(format!(
                    "Invalid value {class} for configuration {prefix}: Class {class} could not be found \
                     (sluice has org.apache.kafka.connect.json.JsonConverter, \
                     org.apache.kafka.connect.storage.StringConverter and \
                     org.apache.kafka.connect.converters.ByteArrayConverter)"
                )))
            }
        };
        Ok(Some(converter))
    }

    /// `fromConnectData`: the record field, `None` for null.
    pub fn from_connect(
        &self,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, DataError> {
        match self {
            Converter::Json(j) => j.from_connect(schema, value),
            Converter::String => Ok(match value {
                Value::Null => None,
                v => Some(v.to_string().into_bytes()),
            }),
            Converter::ByteArray => match value {
                Value::Null => Ok(None),
                Value::Bytes(b) => Ok(Some(b.clone())),
                v => Err(DataError(format!(
                    "ByteArrayConverter is not compatible with objects of type {v:?}"
                ))),
            },
        }
    }

    /// `toConnectData`.
    pub fn to_connect(&self, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value), DataError> {
        match self {
            Converter::Json(j) => j.to_connect(bytes),
            Converter::String => Ok((
                Some(Schema::of(Type::String).optional()),
                bytes.map_or(Value::Null, |b| {
                    Value::String(String::from_utf8_lossy(b).into_owned())
                }),
            )),
            Converter::ByteArray => Ok((
                Some(Schema::of(Type::Bytes).optional()),
                bytes.map_or(Value::Null, |b| Value::Bytes(b.to_vec())),
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn props(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn configured_by_kafka_class_names() {
        let p = props(&[
            (
                "value.converter",
                "org.apache.kafka.connect.json.JsonConverter",
            ),
            ("value.converter.schemas.enable", "false"),
            ("key.converter", "StringConverter"),
        ]);
        assert_eq!(
            Converter::configure(&p, "value.converter").unwrap(),
            Some(Converter::Json(JsonConverter {
                schemas_enable: false
            }))
        );
        assert_eq!(
            Converter::configure(&p, "key.converter").unwrap(),
            Some(Converter::String)
        );
        assert_eq!(Converter::configure(&p, "header.converter").unwrap(), None);
        let bad = props(&[("key.converter", "com.example.AvroConverter")]);
        let e = Converter::configure(&bad, "key.converter").unwrap_err();
        assert!(e.0.contains("could not be found"), "{e}");
    }

    #[test]
    fn string_and_bytes() {
        let s = Converter::String;
        assert_eq!(
            s.from_connect(None, &Value::Int32(5)).unwrap(),
            Some(b"5".to_vec())
        );
        assert_eq!(
            s.to_connect(Some(b"x")).unwrap().1,
            Value::String("x".into())
        );
        let b = Converter::ByteArray;
        assert!(b.from_connect(None, &Value::String("x".into())).is_err());
        assert_eq!(b.to_connect(None).unwrap().1, Value::Null);
    }
}
