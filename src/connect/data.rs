//! Kafka Connect's data model: a schema and a value, as `org.apache.kafka.connect.data`
//! has them, and the text a value prints as (`FileStreamSink` writes `value.toString()`).

use std::fmt;

/// `Schema.Type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    Int8,
    Int16,
    Int32,
    Int64,
    Float32,
    Float64,
    Boolean,
    String,
    Bytes,
    Array,
    Map,
    Struct,
}

impl Type {
    /// The name JsonConverter writes in `"type"`.
    pub fn json_name(self) -> &'static str {
        match self {
            Type::Int8 => "int8",
            Type::Int16 => "int16",
            Type::Int32 => "int32",
            Type::Int64 => "int64",
            Type::Float32 => "float",
            Type::Float64 => "double",
            Type::Boolean => "boolean",
            Type::String => "string",
            Type::Bytes => "bytes",
            Type::Array => "array",
            Type::Map => "map",
            Type::Struct => "struct",
        }
    }

    pub fn from_json_name(name: &str) -> Option<Type> {
        Some(match name {
            "int8" => Type::Int8,
            "int16" => Type::Int16,
            "int32" => Type::Int32,
            "int64" => Type::Int64,
            "float" => Type::Float32,
            "double" => Type::Float64,
            "boolean" => Type::Boolean,
            "string" => Type::String,
            "bytes" => Type::Bytes,
            "array" => Type::Array,
            "map" => Type::Map,
            "struct" => Type::Struct,
            _ => return None,
        })
    }
}

/// A Connect schema (`ConnectSchema`).
#[derive(Debug, Clone, PartialEq)]
pub struct Schema {
    pub kind: Type,
    pub optional: bool,
    pub name: Option<String>,
    pub version: Option<i32>,
    pub doc: Option<String>,
    /// In insertion order, as SchemaBuilder's LinkedHashMap keeps them.
    pub parameters: Option<Vec<(String, String)>>,
    pub default: Option<Box<Value>>,
    /// Struct fields, in order.
    pub fields: Vec<Field>,
    /// Map keys.
    pub key: Option<Box<Schema>>,
    /// Array items and map values.
    pub value: Option<Box<Schema>>,
}

/// One field of a struct schema.
#[derive(Debug, Clone, PartialEq)]
pub struct Field {
    pub name: String,
    pub schema: Schema,
}

impl Schema {
    /// A required schema of a primitive type (`Schema.STRING_SCHEMA` and friends).
    pub fn of(kind: Type) -> Schema {
        Schema {
            kind,
            optional: false,
            name: None,
            version: None,
            doc: None,
            parameters: None,
            default: None,
            fields: Vec::new(),
            key: None,
            value: None,
        }
    }

    pub fn optional(mut self) -> Schema {
        self.optional = true;
        self
    }

    pub fn array(items: Schema) -> Schema {
        Schema {
            value: Some(Box::new(items)),
            ..Schema::of(Type::Array)
        }
    }

    pub fn map(key: Schema, value: Schema) -> Schema {
        Schema {
            key: Some(Box::new(key)),
            value: Some(Box::new(value)),
            ..Schema::of(Type::Map)
        }
    }

    pub fn structure(fields: Vec<(&str, Schema)>) -> Schema {
        Schema {
            fields: fields
                .into_iter()
                .map(|(name, schema)| Field {
                    name: name.to_string(),
                    schema,
                })
                .collect(),
            ..Schema::of(Type::Struct)
        }
    }
}

/// A Connect value. Struct fields carry their names, in schema order.
#[derive(Debug, Clone, PartialEq)]
pub enum Value {
    Null,
    Boolean(bool),
    Int8(i8),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    String(String),
    Bytes(Vec<u8>),
    Array(Vec<Value>),
    Map(Vec<(Value, Value)>),
    Struct(Vec<(String, Value)>),
}

/// Java's `Double.toString` / `Float.toString`: plain between 10^-3 and 10^7
/// with at least one decimal, otherwise `d.dddE±n`.
pub fn java_float(x: f64, digits: &str) -> String {
    if x.is_nan() {
        return "NaN".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "Infinity" } else { "-Infinity" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let abs = x.abs();
    if (1e-3..1e7).contains(&abs) {
        return if digits.contains('.') {
            digits.to_string()
        } else {
            format!("{digits}.0")
        };
    }
    // `digits` is Rust's shortest round-trip form; rebuild it in Java's
    // scientific notation from its significant digits and exponent.
    let sci = format!("{:e}", digits.parse::<f64>().unwrap_or(x));
    let (mantissa, exp) = sci.split_once('e').unwrap_or((&sci, "0"));
    let mantissa = if mantissa.contains('.') {
        mantissa.to_string()
    } else {
        format!("{mantissa}.0")
    };
    format!("{mantissa}E{exp}")
}

impl fmt::Display for Value {
    /// What Java's `toString` prints for the Connect value.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Null => f.write_str("null"),
            Value::Boolean(b) => write!(f, "{b}"),
            Value::Int8(v) => write!(f, "{v}"),
            Value::Int16(v) => write!(f, "{v}"),
            Value::Int32(v) => write!(f, "{v}"),
            Value::Int64(v) => write!(f, "{v}"),
            Value::Float32(v) => f.write_str(&java_float(f64::from(*v), &v.to_string())),
            Value::Float64(v) => f.write_str(&java_float(*v, &v.to_string())),
            Value::String(s) => f.write_str(s),
            Value::Bytes(b) => f.write_str(&String::from_utf8_lossy(b)),
            Value::Array(items) => {
                f.write_str("[")?;
                for (i, v) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{v}")?;
                }
                f.write_str("]")
            }
            Value::Map(entries) => {
                f.write_str("{")?;
                for (i, (k, v)) in entries.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{k}={v}")?;
                }
                f.write_str("}")
            }
            // Struct.toString: null fields are left out.
            Value::Struct(fields) => {
                f.write_str("Struct{")?;
                let mut first = true;
                for (name, v) in fields.iter().filter(|(_, v)| *v != Value::Null) {
                    if !first {
                        f.write_str(",")?;
                    }
                    first = false;
                    write!(f, "{name}={v}")?;
                }
                f.write_str("}")
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prints_as_java_does() {
        assert_eq!(Value::Float64(1.0).to_string(), "1.0");
        assert_eq!(Value::Float64(0.5).to_string(), "0.5");
        assert_eq!(Value::Float64(1e10).to_string(), "1.0E10");
        assert_eq!(Value::Float64(1.25e-5).to_string(), "1.25E-5");
        assert_eq!(Value::Float32(3.5).to_string(), "3.5");
        let s = Value::Struct(vec![
            ("a".into(), Value::Int32(1)),
            ("b".into(), Value::Null),
            (
                "c".into(),
                Value::Array(vec![Value::Boolean(true), Value::Null]),
            ),
        ]);
        assert_eq!(s.to_string(), "Struct{a=1,c=[true, null]}");
        let m = Value::Map(vec![(Value::String("k".into()), Value::Int64(-2))]);
        assert_eq!(m.to_string(), "{k=-2}");
    }
}
