//! `org.apache.kafka.connect.json.JsonConverter`: Connect data to JSON bytes
//! and back, writing byte for byte what Kafka's converter (Jackson) writes.
//!
//! With `schemas.enable=true` every value travels in an envelope,
//! `{"schema":{...},"payload":...}`, compact, schema first; without, the bare
//! JSON value.

use base64::Engine;

use super::data::{java_float, Field, Schema, Type, Value};
use super::DataError;

/// An ordered JSON tree, written the way Jackson's generator writes it.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float32(f32),
    Float64(f64),
    Str(String),
    /// Jackson's binary node: base64 (MIME without line feeds, padded).
    Bin(Vec<u8>),
    Arr(Vec<Node>),
    Obj(Vec<(String, Node)>),
}

impl Node {
    fn write(&self, out: &mut String) {
        match self {
            Node::Null => out.push_str("null"),
            Node::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
            Node::Int(v) => out.push_str(&v.to_string()),
            Node::Float32(v) => out.push_str(&java_float(f64::from(*v), &v.to_string())),
            Node::Float64(v) => out.push_str(&java_float(*v, &v.to_string())),
            Node::Str(s) => write_string(s, out),
            Node::Bin(b) => write_string(&base64::engine::general_purpose::STANDARD.encode(b), out),
            Node::Arr(items) => {
                out.push('[');
                for (i, n) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    n.write(out);
                }
                out.push(']');
            }
            Node::Obj(entries) => {
                out.push('{');
                for (i, (k, n)) in entries.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(k, out);
                    out.push(':');
                    n.write(out);
                }
                out.push('}');
            }
        }
    }
}

/// Jackson's escaping: `"` and `\`, the five short control escapes, every
/// other control character as `\u00XX` with upper-case hex; `/` and
/// non-ASCII as they are (UTF-8).
fn write_string(s: &str, out: &mut String) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\u{08}' => out.push_str("\\b"),
            '\t' => out.push_str("\\t"),
            '\n' => out.push_str("\\n"),
            '\u{0C}' => out.push_str("\\f"),
            '\r' => out.push_str("\\r"),
            c if (c as u32) < 0x20 => {
                let b = c as u8;
                out.push_str("\\u00");
                out.push(HEX[usize::from(b >> 4)] as char);
                out.push(HEX[usize::from(b & 0xF)] as char);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// `JsonConverter` configured for keys or values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JsonConverter {
    /// `schemas.enable` (Kafka's default: true).
    pub schemas_enable: bool,
}

impl JsonConverter {
    /// `fromConnectData`: `None` (a null record field) for no schema and no value.
    pub fn from_connect(
        &self,
        schema: Option<&Schema>,
        value: &Value,
    ) -> Result<Option<Vec<u8>>, DataError> {
        if schema.is_none() && *value == Value::Null {
            return Ok(None);
        }
        let payload = to_json(schema, value)?;
        let node = if self.schemas_enable {
            let schema = schema.map_or(Node::Null, as_json_schema);
            Node::Obj(vec![("schema".into(), schema), ("payload".into(), payload)])
        } else {
            payload
        };
        let mut out = String::new();
        node.write(&mut out);
        Ok(Some(out.into_bytes()))
    }

    /// `toConnectData`: a null record field is a null value without schema.
    pub fn to_connect(&self, bytes: Option<&[u8]>) -> Result<(Option<Schema>, Value), DataError> {
        let Some(bytes) = bytes else {
            return Ok((None, Value::Null));
        };
        let json: serde_json::Value = serde_json::from_slice(bytes).map_err(|e| {
            DataError(format!(
                "Converting byte[] to Kafka Connect data failed due to serialization error: {e}"
            ))
        })?;
        if !self.schemas_enable {
            return Ok((None, to_connect(None, &json)?));
        }
        let envelope =
            match &json {
                serde_json::Value::Object(o)
                    if o.len() == 2 && o.contains_key("schema") && o.contains_key("payload") =>
                {
                    o
                }
                _ => return Err(DataError(
                    "JsonConverter with schemas.enable requires \"schema\" and \"payload\" fields \
                     and may not contain additional fields. If you are trying to deserialize plain \
                     JSON data, set schemas.enable=false in your converter configuration."
                        .into(),
                )),
            };
        let schema = as_connect_schema(&envelope["schema"])?;
        let value = to_connect(schema.as_ref(), &envelope["payload"])?;
        Ok((schema, value))
    }
}

/// `asJsonSchema`: the field order Kafka writes (type, its parts, optional,
/// name, version, doc, parameters, default).
fn as_json_schema(schema: &Schema) -> Node {
    let mut obj = vec![(
        "type".to_string(),
        Node::Str(schema.kind.json_name().into()),
    )];
    match schema.kind {
        Type::Array => obj.push(("items".into(), opt_schema(schema.value.as_deref()))),
        Type::Map => {
            obj.push(("keys".into(), opt_schema(schema.key.as_deref())));
            obj.push(("values".into(), opt_schema(schema.value.as_deref())));
        }
        Type::Struct => {
            let fields = schema
                .fields
                .iter()
                .map(|f| {
                    let Node::Obj(mut entries) = as_json_schema(&f.schema) else {
                        unreachable!("a schema is always a JSON object")
                    };
                    entries.push(("field".into(), Node::Str(f.name.clone())));
                    Node::Obj(entries)
                })
                .collect();
            obj.push(("fields".into(), Node::Arr(fields)));
        }
        _ => {}
    }
    obj.push(("optional".into(), Node::Bool(schema.optional)));
    if let Some(name) = &schema.name {
        obj.push(("name".into(), Node::Str(name.clone())));
    }
    if let Some(version) = schema.version {
        obj.push(("version".into(), Node::Int(i64::from(version))));
    }
    if let Some(doc) = &schema.doc {
        obj.push(("doc".into(), Node::Str(doc.clone())));
    }
    if let Some(params) = &schema.parameters {
        let params = params
            .iter()
            .map(|(k, v)| (k.clone(), Node::Str(v.clone())))
            .collect();
        obj.push(("parameters".into(), Node::Obj(params)));
    }
    if let Some(default) = &schema.default {
        // A default that does not fit its own schema cannot be built in
        // Kafka either; write it schemaless rather than fail.
        let node = to_json(Some(schema), default).or_else(|_| to_json(None, default));
        obj.push(("default".into(), node.unwrap_or(Node::Null)));
    }
    Node::Obj(obj)
}

fn opt_schema(schema: Option<&Schema>) -> Node {
    schema.map_or(Node::Null, as_json_schema)
}

fn mismatch(schema: &Schema, value: &Value) -> DataError {
    DataError(format!(
        "Invalid type for {}: {value:?}",
        schema.kind.json_name().to_uppercase()
    ))
}

/// `convertToJson`.
fn to_json(schema: Option<&Schema>, value: &Value) -> Result<Node, DataError> {
    if *value == Value::Null {
        return match schema {
            None => Ok(Node::Null),
            Some(s) => match &s.default {
                Some(d) => to_json(Some(s), d),
                None if s.optional => Ok(Node::Null),
                None => Err(DataError(
                    "Conversion error: null value for field that is required and has no default value"
                        .into(),
                )),
            },
        };
    }
    let Some(schema) = schema else {
        return schemaless_to_json(value);
    };
    Ok(match (schema.kind, value) {
        (Type::Int8, Value::Int8(v)) => Node::Int(i64::from(*v)),
        (Type::Int16, Value::Int16(v)) => Node::Int(i64::from(*v)),
        (Type::Int32, Value::Int32(v)) => Node::Int(i64::from(*v)),
        (Type::Int64, Value::Int64(v)) => Node::Int(*v),
        (Type::Float32, Value::Float32(v)) => Node::Float32(*v),
        (Type::Float64, Value::Float64(v)) => Node::Float64(*v),
        (Type::Boolean, Value::Boolean(v)) => Node::Bool(*v),
        (Type::String, Value::String(v)) => Node::Str(v.clone()),
        (Type::Bytes, Value::Bytes(v)) => Node::Bin(v.clone()),
        (Type::Array, Value::Array(items)) => Node::Arr(
            items
                .iter()
                .map(|v| to_json(schema.value.as_deref(), v))
                .collect::<Result<_, _>>()?,
        ),
        (Type::Map, Value::Map(entries)) => {
            let object_mode = schema.key.as_ref().is_some_and(|k| k.kind == Type::String);
            map_to_json(
                entries,
                object_mode,
                schema.key.as_deref(),
                schema.value.as_deref(),
            )?
        }
        (Type::Struct, Value::Struct(values)) => {
            let mut obj = Vec::with_capacity(schema.fields.len());
            for Field { name, schema: fs } in &schema.fields {
                let v = values
                    .iter()
                    .find(|(n, _)| n == name)
                    .map_or(&Value::Null, |(_, v)| v);
                obj.push((name.clone(), to_json(Some(fs), v)?));
            }
            Node::Obj(obj)
        }
        _ => return Err(mismatch(schema, value)),
    })
}

fn schemaless_to_json(value: &Value) -> Result<Node, DataError> {
    Ok(match value {
        Value::Null => Node::Null,
        Value::Boolean(v) => Node::Bool(*v),
        Value::Int8(v) => Node::Int(i64::from(*v)),
        Value::Int16(v) => Node::Int(i64::from(*v)),
        Value::Int32(v) => Node::Int(i64::from(*v)),
        Value::Int64(v) => Node::Int(*v),
        Value::Float32(v) => Node::Float32(*v),
        Value::Float64(v) => Node::Float64(*v),
        Value::String(v) => Node::Str(v.clone()),
        Value::Bytes(v) => Node::Bin(v.clone()),
        Value::Array(items) => Node::Arr(
            items
                .iter()
                .map(schemaless_to_json)
                .collect::<Result<_, _>>()?,
        ),
        Value::Map(entries) => {
            let object_mode = entries.iter().all(|(k, _)| matches!(k, Value::String(_)));
            map_to_json(entries, object_mode, None, None)?
        }
        Value::Struct(_) => {
            return Err(DataError(
                "Java class Struct does not have corresponding schema type.".into(),
            ))
        }
    })
}

/// Maps with string keys are JSON objects; others arrays of `[key, value]`.
fn map_to_json(
    entries: &[(Value, Value)],
    object_mode: bool,
    key_schema: Option<&Schema>,
    value_schema: Option<&Schema>,
) -> Result<Node, DataError> {
    if object_mode {
        let mut obj = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            obj.push((k.to_string(), to_json(value_schema, v)?));
        }
        Ok(Node::Obj(obj))
    } else {
        let mut arr = Vec::with_capacity(entries.len());
        for (k, v) in entries {
            arr.push(Node::Arr(vec![
                to_json(key_schema, k)?,
                to_json(value_schema, v)?,
            ]));
        }
        Ok(Node::Arr(arr))
    }
}

/// `asConnectSchema`: `None` for a JSON null schema.
fn as_connect_schema(json: &serde_json::Value) -> Result<Option<Schema>, DataError> {
    use serde_json::Value as J;
    if json.is_null() {
        return Ok(None);
    }
    let err = |m: &str| DataError(m.to_string());
    let kind = match json.get("type") {
        Some(J::String(t)) => {
            Type::from_json_name(t).ok_or_else(|| DataError(format!("Unknown schema type: {t}")))?
        }
        _ => return Err(err("Schema must contain 'type' field")),
    };
    let mut schema = Schema::of(kind);
    match kind {
        Type::Array => {
            let items = json
                .get("items")
                .and_then(|i| as_connect_schema(i).transpose())
                .ok_or_else(|| err("Array schema did not specify the element type"))??;
            schema.value = Some(Box::new(items));
        }
        Type::Map => {
            let keys = json
                .get("keys")
                .ok_or_else(|| err("Map schema did not specify the key type"))?;
            let values = json
                .get("values")
                .ok_or_else(|| err("Map schema did not specify the value type"))?;
            schema.key = as_connect_schema(keys)?.map(Box::new);
            schema.value = as_connect_schema(values)?.map(Box::new);
        }
        Type::Struct => {
            let Some(J::Array(fields)) = json.get("fields") else {
                return Err(err("Struct schema's \"fields\" argument is not an array."));
            };
            for f in fields {
                let Some(J::String(name)) = f.get("field") else {
                    return Err(err("Struct schema's field name not specified properly"));
                };
                let fs = as_connect_schema(f)?
                    .ok_or_else(|| err("Struct schema's field schema is null"))?;
                schema.fields.push(Field {
                    name: name.clone(),
                    schema: fs,
                });
            }
        }
        _ => {}
    }
    schema.optional = json.get("optional") == Some(&J::Bool(true));
    if let Some(J::String(name)) = json.get("name") {
        schema.name = Some(name.clone());
    }
    if let Some(v) = json.get("version").and_then(J::as_i64) {
        schema.version = i32::try_from(v).ok();
    }
    if let Some(J::String(doc)) = json.get("doc") {
        schema.doc = Some(doc.clone());
    }
    if let Some(J::Object(params)) = json.get("parameters") {
        let mut out = Vec::with_capacity(params.len());
        for (k, v) in params {
            let J::String(v) = v else {
                return Err(err("Schema parameters must have string values."));
            };
            out.push((k.clone(), v.clone()));
        }
        schema.parameters = Some(out);
    }
    if let Some(d) = json.get("default") {
        let without_default = schema.clone();
        schema.default = Some(Box::new(to_connect(Some(&without_default), d)?));
    }
    Ok(Some(schema))
}

/// `convertToConnect`.
fn to_connect(schema: Option<&Schema>, json: &serde_json::Value) -> Result<Value, DataError> {
    use serde_json::Value as J;
    let Some(schema) = schema else {
        return Ok(match json {
            J::Null => Value::Null,
            J::Bool(b) => Value::Boolean(*b),
            J::Number(n) => match n.as_i64() {
                Some(i) => Value::Int64(i),
                None => Value::Float64(n.as_f64().unwrap_or(f64::NAN)),
            },
            J::String(s) => Value::String(s.clone()),
            J::Array(items) => Value::Array(
                items
                    .iter()
                    .map(|i| to_connect(None, i))
                    .collect::<Result<_, _>>()?,
            ),
            J::Object(o) => Value::Map(
                o.iter()
                    .map(|(k, v)| Ok((Value::String(k.clone()), to_connect(None, v)?)))
                    .collect::<Result<_, DataError>>()?,
            ),
        });
    };
    let upper = schema.kind.json_name().to_uppercase();
    if json.is_null() {
        if let Some(d) = &schema.default {
            return Ok((**d).clone());
        }
        if schema.optional {
            return Ok(Value::Null);
        }
        return Err(DataError(format!(
            "Invalid null value for required {upper} field"
        )));
    }
    let bad = || DataError(format!("Invalid value for {upper} field: {json}"));
    let int = |lo: i64, hi: i64| {
        json.as_i64()
            .filter(|v| (lo..=hi).contains(v))
            .ok_or_else(bad)
    };
    Ok(match schema.kind {
        Type::Boolean => Value::Boolean(json.as_bool().ok_or_else(bad)?),
        Type::Int8 => Value::Int8(int(i8::MIN.into(), i8::MAX.into())? as i8),
        Type::Int16 => Value::Int16(int(i16::MIN.into(), i16::MAX.into())? as i16),
        Type::Int32 => Value::Int32(int(i32::MIN.into(), i32::MAX.into())? as i32),
        Type::Int64 => Value::Int64(json.as_i64().ok_or_else(bad)?),
        Type::Float32 => Value::Float32(json.as_f64().ok_or_else(bad)? as f32),
        Type::Float64 => Value::Float64(json.as_f64().ok_or_else(bad)?),
        Type::String => Value::String(json.as_str().ok_or_else(bad)?.to_string()),
        Type::Bytes => {
            let text = json.as_str().ok_or_else(bad)?;
            Value::Bytes(
                base64::engine::general_purpose::STANDARD
                    .decode(text)
                    .map_err(|_| bad())?,
            )
        }
        Type::Array => Value::Array(
            json.as_array()
                .ok_or_else(bad)?
                .iter()
                .map(|i| to_connect(schema.value.as_deref(), i))
                .collect::<Result<_, _>>()?,
        ),
        Type::Map => {
            let key = schema.key.as_deref();
            let value = schema.value.as_deref();
            if key.is_none_or(|k| k.kind == Type::String) {
                let o = json.as_object().ok_or_else(bad)?;
                Value::Map(
                    o.iter()
                        .map(|(k, v)| Ok((Value::String(k.clone()), to_connect(value, v)?)))
                        .collect::<Result<_, DataError>>()?,
                )
            } else {
                let pairs = json.as_array().ok_or_else(bad)?;
                let mut out = Vec::with_capacity(pairs.len());
                for pair in pairs {
                    match pair.as_array().map(Vec::as_slice) {
                        Some([k, v]) => out.push((to_connect(key, k)?, to_connect(value, v)?)),
                        _ => {
                            return Err(DataError(
                                "Found invalid map entry instead of array tuple".into(),
                            ))
                        }
                    }
                }
                Value::Map(out)
            }
        }
        Type::Struct => {
            let o = json
                .as_object()
                .ok_or_else(|| DataError("Structs should be encoded as JSON objects".into()))?;
            let mut out = Vec::with_capacity(schema.fields.len());
            for f in &schema.fields {
                let v = o.get(&f.name).unwrap_or(&J::Null);
                out.push((f.name.clone(), to_connect(Some(&f.schema), v)?));
            }
            Value::Struct(out)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const ON: JsonConverter = JsonConverter {
        schemas_enable: true,
    };
    const OFF: JsonConverter = JsonConverter {
        schemas_enable: false,
    };

    fn text(c: JsonConverter, s: &Schema, v: &Value) -> String {
        String::from_utf8(c.from_connect(Some(s), v).unwrap().unwrap()).unwrap()
    }

    /// Written by Apache Kafka's own JsonConverter (tests/fixtures/connect/make-fixtures.sh).
    const KAFKA: &str = include_str!("../../tests/fixtures/connect/kafka-json-converter.tsv");

    fn kafka_wrote(name: &str) -> &'static str {
        KAFKA
            .lines()
            .find_map(|l| l.strip_prefix(name).and_then(|r| r.strip_prefix('\t')))
            .unwrap_or_else(|| panic!("no fixture {name}"))
    }

    fn nested() -> (Schema, Value) {
        let mut inner = Schema::structure(vec![
            ("x", Schema::of(Type::Int16)),
            ("tags", Schema::array(Schema::of(Type::String)).optional()),
        ]);
        inner.name = Some("com.example.Inner".into());
        inner.version = Some(2);
        inner.doc = Some("inner doc".into());
        let outer = Schema::structure(vec![
            ("id", Schema::of(Type::Int32)),
            ("name", Schema::of(Type::String)),
            ("ok", Schema::of(Type::Boolean).optional()),
            ("inner", inner),
            (
                "counts",
                Schema::map(Schema::of(Type::String), Schema::of(Type::Int64)),
            ),
        ]);
        let value = Value::Struct(vec![
            ("id".into(), Value::Int32(1)),
            ("name".into(), Value::String("n".into())),
            ("ok".into(), Value::Null),
            (
                "inner".into(),
                Value::Struct(vec![
                    ("x".into(), Value::Int16(7)),
                    (
                        "tags".into(),
                        Value::Array(vec![Value::String("a".into()), Value::String("b".into())]),
                    ),
                ]),
            ),
            (
                "counts".into(),
                Value::Map(vec![(Value::String("k".into()), Value::Int64(3))]),
            ),
        ]);
        (outer, value)
    }

    #[test]
    fn writes_byte_for_byte_what_kafka_writes() {
        let (outer, nested_value) = nested();
        let cases: Vec<(&str, JsonConverter, Schema, Value)> = vec![
            (
                "string",
                ON,
                Schema::of(Type::String),
                Value::String("foo".into()),
            ),
            (
                "string-escapes",
                ON,
                Schema::of(Type::String),
                Value::String("q\"b\\s/t\tn\nc\u{1}\u{1f}\u{e9}".into()),
            ),
            ("int32", ON, Schema::of(Type::Int32), Value::Int32(42)),
            (
                "int64",
                ON,
                Schema::of(Type::Int64),
                Value::Int64(-9007199254740993),
            ),
            (
                "boolean",
                ON,
                Schema::of(Type::Boolean),
                Value::Boolean(true),
            ),
            ("null", ON, Schema::of(Type::String).optional(), Value::Null),
            (
                "double",
                ON,
                Schema::of(Type::Float64),
                Value::Float64(1.0e10),
            ),
            ("float", ON, Schema::of(Type::Float32), Value::Float32(0.25)),
            (
                "bytes",
                ON,
                Schema::of(Type::Bytes),
                Value::Bytes(vec![0, 1, 2, 0xff]),
            ),
            ("nested-struct", ON, outer.clone(), nested_value.clone()),
            (
                "nested-struct-schemaless",
                OFF,
                outer.clone(),
                nested_value.clone(),
            ),
            (
                "string-schemaless",
                OFF,
                Schema::of(Type::String),
                Value::String("foo".into()),
            ),
        ];
        for (name, conv, schema, value) in cases {
            let ours = text(conv, &schema, &value);
            assert_eq!(ours, kafka_wrote(name), "fixture {name}");
            // And reading Kafka's bytes gives the schema and value back.
            let (s, v) = conv.to_connect(Some(kafka_wrote(name).as_bytes())).unwrap();
            if conv.schemas_enable {
                assert_eq!(s.as_ref(), Some(&schema), "fixture {name}");
                assert_eq!(v, value, "fixture {name}");
            }
        }
    }

    #[test]
    fn the_seed_envelope() {
        let s = Schema::of(Type::String);
        assert_eq!(
            text(ON, &s, &Value::String("foo".into())),
            r#"{"schema":{"type":"string","optional":false},"payload":"foo"}"#
        );
        assert_eq!(text(OFF, &s, &Value::String("foo".into())), r#""foo""#);
        // No schema and no value: a null record field, as Kafka's converter.
        assert_eq!(ON.from_connect(None, &Value::Null).unwrap(), None);
    }

    #[test]
    fn escapes_as_jackson_does() {
        let s = Schema::of(Type::String);
        let v = Value::String("q\"b\\s/t\tn\nc\u{1}é".into());
        assert_eq!(text(OFF, &s, &v), "\"q\\\"b\\\\s/t\\tn\\nc\\u0001é\"");
    }

    #[test]
    fn round_trips_every_type() {
        let s = Schema::structure(vec![
            ("i8", Schema::of(Type::Int8)),
            ("i16", Schema::of(Type::Int16)),
            ("i64", Schema::of(Type::Int64)),
            ("f", Schema::of(Type::Float32)),
            ("d", Schema::of(Type::Float64)),
            ("bytes", Schema::of(Type::Bytes)),
            ("arr", Schema::array(Schema::of(Type::Int32))),
            (
                "m",
                Schema::map(Schema::of(Type::Int32), Schema::of(Type::String)),
            ),
            ("opt", Schema::of(Type::String).optional()),
        ]);
        let v = Value::Struct(vec![
            ("i8".into(), Value::Int8(-8)),
            ("i16".into(), Value::Int16(300)),
            ("i64".into(), Value::Int64(1 << 40)),
            ("f".into(), Value::Float32(1.5)),
            ("d".into(), Value::Float64(2.0)),
            ("bytes".into(), Value::Bytes(b"hi".to_vec())),
            (
                "arr".into(),
                Value::Array(vec![Value::Int32(1), Value::Int32(2)]),
            ),
            (
                "m".into(),
                Value::Map(vec![(Value::Int32(1), Value::String("one".into()))]),
            ),
            ("opt".into(), Value::Null),
        ]);
        let bytes = ON.from_connect(Some(&s), &v).unwrap().unwrap();
        let json = String::from_utf8(bytes.clone()).unwrap();
        assert!(json.contains(r#""payload":{"i8":-8,"i16":300,"i64":1099511627776,"f":1.5,"d":2.0,"bytes":"aGk=","arr":[1,2],"m":[[1,"one"]],"opt":null}"#), "{json}");
        let (back_schema, back) = ON.to_connect(Some(&bytes)).unwrap();
        assert_eq!(back_schema.as_ref(), Some(&s));
        assert_eq!(back, v);
    }

    #[test]
    fn rejects_what_kafka_rejects() {
        let e = ON.to_connect(Some(b"\"foo\"")).unwrap_err();
        assert!(e.0.contains("requires \"schema\" and \"payload\""), "{e}");
        assert!(ON.to_connect(Some(b"{not json")).is_err());
        let required_null = br#"{"schema":{"type":"string","optional":false},"payload":null}"#;
        assert!(ON.to_connect(Some(required_null)).is_err());
        let s = Schema::of(Type::String);
        assert!(ON.from_connect(Some(&s), &Value::Int32(1)).is_err());
        // Schemaless: integers are int64, objects maps.
        let (schema, v) = OFF.to_connect(Some(br#"{"a":1,"b":[true,1.5]}"#)).unwrap();
        assert_eq!(schema, None);
        assert_eq!(v.to_string(), "{a=1, b=[true, 1.5]}");
    }
}
