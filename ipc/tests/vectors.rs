//! The Rust runner of the wire conformance vectors in `ipc/vectors/`.
//!
//! The vectors are data (`ipc/vectors/*.json`, format in
//! `ipc/vectors/FORMAT.md`) so that another implementation can run the same
//! cases; `ipc/vectors/check.py` is one, and `cargo xtask test` runs it too.
//! Here every case is checked against the crate: a `golden` case's bytes
//! must decode (with [`wire::decode`], or [`wire::decode_body`] for a file
//! without an envelope) to a value whose serde JSON rendering is the case's
//! `value`, and that `value`, deserialized into the Rust type, must encode
//! to exactly the bytes; a `decode` case only decodes (non-canonical bytes
//! postcard accepts); a `decode_error` case must fail with exactly its
//! [`WireError`] and an `encode_error` case must refuse to encode with it.
//!
//! The documented value rendering *is* serde's JSON rendering of the types
//! (externally tagged enums, structs as objects, `Option` as null or the
//! value, newtype structs as their field, `heapless` vectors as arrays and
//! strings as strings), so no per-type conversion code is needed: a case
//! names its type, and [`with_type`] maps the name to the Rust type.
//!
//! `schema.json` describes the same types for other decoders;
//! [`schema_matches_the_rust_types`] holds it to the crate: every enum's
//! variant names and every struct's field names, in declaration order, as
//! serde sees them.
//!
//! The bytes are the contract: a change that breaks a vector changes the
//! wire format, and needs a protocol version bump.

use faultline_ipc::abi::MAX_MESSAGE;
use faultline_ipc::channel::Refusal;
use faultline_ipc::kconfig::{RestartPolicy, TaskFault, TaskState, TaskStatus};
use faultline_ipc::protocol::bench::{BenchRequest, BenchResponse};
use faultline_ipc::protocol::events::{EventKind, EventsRequest, EventsResponse};
use faultline_ipc::protocol::faults::{
    Fault, FaultAccess, FaultToken, FaultsError, FaultsRequest, FaultsResponse, PageAccess,
    PageGroup, PageRequest, ResponseCode,
};
use faultline_ipc::protocol::iommu::{
    Access, DomainInfo, FaultCounters, FaultOutcome, IommuError, IommuRequest, IommuResponse, Mode,
    PageSize, SettledFault,
};
use faultline_ipc::protocol::ping::{PingRequest, PingResponse};
use faultline_ipc::wire::{self, ProtocolId, WireError};
use serde::de::{self, DeserializeOwned, Deserializer, Visitor};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::fmt::Debug;
use std::path::PathBuf;

/// Every vector file, in the order the tests below run them.
const FILES: &[&str] = &[
    "primitives.json",
    "ping.json",
    "bench.json",
    "events.json",
    "iommu.json",
    "faults.json",
    "refusal.json",
    "supervisor.json",
];

/// Calls `$run::<T>($($arg),*)` with `T` the Rust type `$name` names;
/// `None` for a name the runner does not know. One list for the case
/// runner and the schema check.
macro_rules! with_type {
    ($name:expr, $run:ident ($($arg:expr),*)) => {
        match $name {
            "u8" => Some($run::<u8>($($arg),*)),
            "u16" => Some($run::<u16>($($arg),*)),
            "u32" => Some($run::<u32>($($arg),*)),
            "u64" => Some($run::<u64>($($arg),*)),
            "usize" => Some($run::<usize>($($arg),*)),
            "i8" => Some($run::<i8>($($arg),*)),
            "i16" => Some($run::<i16>($($arg),*)),
            "i32" => Some($run::<i32>($($arg),*)),
            "i64" => Some($run::<i64>($($arg),*)),
            "bool" => Some($run::<bool>($($arg),*)),
            "Option<u8>" => Some($run::<Option<u8>>($($arg),*)),
            "Option<u32>" => Some($run::<Option<u32>>($($arg),*)),
            "Vec<u8, 4>" => Some($run::<heapless::Vec<u8, 4>>($($arg),*)),
            "Vec<u8, 200>" => Some($run::<heapless::Vec<u8, 200>>($($arg),*)),
            "Vec<u16, 3>" => Some($run::<heapless::Vec<u16, 3>>($($arg),*)),
            "String<3>" => Some($run::<heapless::String<3>>($($arg),*)),
            "PingRequest" => Some($run::<PingRequest>($($arg),*)),
            "PingResponse" => Some($run::<PingResponse>($($arg),*)),
            "BenchRequest" => Some($run::<BenchRequest>($($arg),*)),
            "BenchResponse" => Some($run::<BenchResponse>($($arg),*)),
            "EventsRequest" => Some($run::<EventsRequest>($($arg),*)),
            "EventsResponse" => Some($run::<EventsResponse>($($arg),*)),
            "EventKind" => Some($run::<EventKind>($($arg),*)),
            "IommuRequest" => Some($run::<IommuRequest>($($arg),*)),
            "IommuResponse" => Some($run::<IommuResponse>($($arg),*)),
            "Access" => Some($run::<Access>($($arg),*)),
            "PageSize" => Some($run::<PageSize>($($arg),*)),
            "Mode" => Some($run::<Mode>($($arg),*)),
            "DomainInfo" => Some($run::<DomainInfo>($($arg),*)),
            "SettledFault" => Some($run::<SettledFault>($($arg),*)),
            "FaultOutcome" => Some($run::<FaultOutcome>($($arg),*)),
            "FaultCounters" => Some($run::<FaultCounters>($($arg),*)),
            "IommuError" => Some($run::<IommuError>($($arg),*)),
            "FaultsRequest" => Some($run::<FaultsRequest>($($arg),*)),
            "FaultsResponse" => Some($run::<FaultsResponse>($($arg),*)),
            "FaultToken" => Some($run::<FaultToken>($($arg),*)),
            "ResponseCode" => Some($run::<ResponseCode>($($arg),*)),
            "FaultAccess" => Some($run::<FaultAccess>($($arg),*)),
            "Fault" => Some($run::<Fault>($($arg),*)),
            "PageAccess" => Some($run::<PageAccess>($($arg),*)),
            "PageRequest" => Some($run::<PageRequest>($($arg),*)),
            "PageGroup" => Some($run::<PageGroup>($($arg),*)),
            "FaultsError" => Some($run::<FaultsError>($($arg),*)),
            "Refusal" => Some($run::<Refusal>($($arg),*)),
            "WireError" => Some($run::<WireError>($($arg),*)),
            "TaskStatus" => Some($run::<TaskStatus>($($arg),*)),
            "TaskState" => Some($run::<TaskState>($($arg),*)),
            "TaskFault" => Some($run::<TaskFault>($($arg),*)),
            "RestartPolicy" => Some($run::<RestartPolicy>($($arg),*)),
            _ => None,
        }
    };
}

fn vectors_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("vectors")
}

fn load(file: &str) -> Value {
    let path = vectors_dir().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// Bytes from the files' hex notation (pairs of hex digits, spaces allowed).
fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err(format!("odd number of hex digits in {text:?}"));
    }
    digits
        .chunks(2)
        .map(|pair| {
            let pair = std::str::from_utf8(pair).map_err(|e| e.to_string())?;
            u8::from_str_radix(pair, 16).map_err(|e| format!("{pair:?}: {e}"))
        })
        .collect()
}

fn hex(bytes: &[u8]) -> String {
    let pairs: Vec<String> = bytes.iter().map(|b| format!("{b:02x}")).collect();
    pairs.join(" ")
}

/// Decodes a whole message (or a bare body, without a protocol).
fn decode<T: DeserializeOwned>(proto: Option<ProtocolId>, bytes: &[u8]) -> Result<T, WireError> {
    match proto {
        Some(proto) => wire::decode(proto, bytes),
        None => wire::decode_body(bytes),
    }
}

/// Encodes a message (or a bare body into a buffer of [`MAX_MESSAGE`]).
fn encode<T: Serialize>(proto: Option<ProtocolId>, value: &T) -> Result<Vec<u8>, WireError> {
    let mut buf = [0; MAX_MESSAGE];
    let n = match proto {
        Some(proto) => wire::encode(proto, value, &mut buf)?,
        None => postcard::to_slice(value, &mut buf)
            .map_err(|e| WireError::from_postcard(&e))?
            .len(),
    };
    Ok(buf[..n].to_vec())
}

/// Checks one case as `T`; the error says what did not hold.
fn run_case<T>(proto: Option<ProtocolId>, case: &Value) -> Result<(), String>
where
    T: Serialize + DeserializeOwned + PartialEq + Debug,
{
    let kind = case["kind"].as_str().ok_or("no kind")?;
    let bytes = match case.get("bytes") {
        Some(b) => Some(unhex(b.as_str().ok_or("bytes is not a string")?)?),
        None => None,
    };
    let value = || case.get("value").ok_or("no value");
    let error = || case.get("error").ok_or("no error");
    let json_of = |e: WireError| serde_json::to_value(e).expect("a WireError renders");
    match kind {
        "golden" | "decode" => {
            let bytes = bytes.ok_or("no bytes")?;
            let decoded: T = decode(proto, &bytes)
                .map_err(|e| format!("decoding failed with {}, expected a value", json_of(e)))?;
            let rendered = serde_json::to_value(&decoded).map_err(|e| e.to_string())?;
            if &rendered != value()? {
                return Err(format!("decoded to {rendered}, expected {}", value()?));
            }
            if kind == "golden" {
                let parsed: T = serde_json::from_value(value()?.clone())
                    .map_err(|e| format!("value does not parse as the type: {e}"))?;
                if parsed != decoded {
                    return Err(format!("value parses to {parsed:?}, bytes to {decoded:?}"));
                }
                let encoded = encode(proto, &parsed)
                    .map_err(|e| format!("encoding failed with {}", json_of(e)))?;
                if encoded != bytes {
                    return Err(format!("encoded to [{}]", hex(&encoded)));
                }
            }
        }
        "decode_error" => {
            let bytes = bytes.ok_or("no bytes")?;
            match decode::<T>(proto, &bytes) {
                Ok(v) => return Err(format!("decoded to {v:?}, expected {}", error()?)),
                Err(e) if &json_of(e) != error()? => {
                    return Err(format!("failed with {}, expected {}", json_of(e), error()?));
                }
                Err(_) => {}
            }
        }
        "encode_error" => {
            let parsed: T = serde_json::from_value(value()?.clone())
                .map_err(|e| format!("value does not parse as the type: {e}"))?;
            match encode(proto, &parsed) {
                Ok(b) => return Err(format!("encoded to [{}], expected {}", hex(&b), error()?)),
                Err(e) if &json_of(e) != error()? => {
                    return Err(format!("failed with {}, expected {}", json_of(e), error()?));
                }
                Err(_) => {}
            }
        }
        other => return Err(format!("unknown case kind {other:?}")),
    }
    Ok(())
}

/// Runs every case of `file`; panics listing the cases that failed.
fn run_file(file: &str) {
    let doc = load(file);
    let proto = match &doc["protocol"] {
        Value::Null => None,
        p => Some(ProtocolId {
            id: p["id"]
                .as_u64()
                .and_then(|v| v.try_into().ok())
                .expect("id"),
            version: p["version"]
                .as_u64()
                .and_then(|v| v.try_into().ok())
                .expect("version"),
        }),
    };
    let cases = doc["cases"].as_array().expect("cases");
    let mut failures = Vec::new();
    for case in cases {
        let name = case["name"].as_str().unwrap_or("(unnamed)");
        let ty = case["type"].as_str().unwrap_or("(no type)");
        let outcome = with_type!(ty, run_case(proto, case))
            .unwrap_or_else(|| Err(format!("unknown type {ty:?}")));
        if let Err(why) = outcome {
            failures.push(format!("{file}: {name:?} ({ty}): {why}"));
        }
    }
    println!(
        "{file}: {}/{} cases pass",
        cases.len() - failures.len(),
        cases.len()
    );
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

#[test]
fn primitives() {
    run_file("primitives.json");
}

#[test]
fn ping() {
    run_file("ping.json");
}

#[test]
fn bench() {
    run_file("bench.json");
}

#[test]
fn events() {
    run_file("events.json");
}

#[test]
fn iommu() {
    run_file("iommu.json");
}

#[test]
fn faults() {
    run_file("faults.json");
}

#[test]
fn refusal() {
    run_file("refusal.json");
}

#[test]
fn supervisor() {
    run_file("supervisor.json");
}

/// No vector file goes unrun: the directory holds exactly [`FILES`] and the
/// schema.
#[test]
fn every_vector_file_is_run() {
    let mut found: Vec<String> = std::fs::read_dir(vectors_dir())
        .expect("ipc/vectors")
        .map(|e| e.expect("entry").file_name().into_string().expect("name"))
        .filter(|n| n.ends_with(".json") && n != "schema.json")
        .collect();
    found.sort();
    let mut listed: Vec<String> = FILES.iter().map(|s| s.to_string()).collect();
    listed.sort();
    assert_eq!(found, listed);
}

/// What serde says a type is, caught by [`Probe`].
#[derive(Debug, PartialEq)]
enum Shape {
    Enum(&'static str, &'static [&'static str]),
    Struct(&'static str, &'static [&'static str]),
    Newtype(&'static str),
    /// A primitive, `Option`, sequence or string.
    Other,
}

/// A deserializer that records the first shape a type asks for and then
/// stops: how the schema check learns a type's variant and field names.
struct Probe<'a>(&'a mut Option<Shape>);

fn stop() -> de::value::Error {
    de::Error::custom("probe")
}

impl<'de> Deserializer<'de> for Probe<'_> {
    type Error = de::value::Error;

    fn deserialize_any<V: Visitor<'de>>(self, _: V) -> Result<V::Value, Self::Error> {
        *self.0 = Some(Shape::Other);
        Err(stop())
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(Shape::Enum(name, variants));
        Err(stop())
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(Shape::Struct(name, fields));
        Err(stop())
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        _: V,
    ) -> Result<V::Value, Self::Error> {
        *self.0 = Some(Shape::Newtype(name));
        Err(stop())
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string
        bytes byte_buf option unit unit_struct seq tuple tuple_struct map
        identifier ignored_any
    }
}

fn shape_of<T: for<'de> Deserialize<'de>>() -> Shape {
    let mut shape = None;
    let _ = T::deserialize(Probe(&mut shape));
    shape.unwrap_or(Shape::Other)
}

/// The shape the schema gives a type (names only; see [`shape_of`]).
fn schema_shape(name: &str, ty: &Value) -> Result<(String, Vec<String>), String> {
    let names = |list: &Value| -> Vec<String> {
        list.as_array()
            .into_iter()
            .flatten()
            .map(|pair| pair[0].as_str().unwrap_or("?").to_string())
            .collect()
    };
    if let Some(v) = ty.get("enum") {
        Ok(("enum".into(), names(v)))
    } else if let Some(f) = ty.get("struct") {
        Ok(("struct".into(), names(f)))
    } else if ty.get("newtype").is_some() {
        Ok(("newtype".into(), vec![]))
    } else {
        Err(format!("{name}: not an enum, struct or newtype"))
    }
}

/// `schema.json` names every enum's variants and every struct's fields in
/// the order the Rust types declare them (what postcard's discriminants
/// and field order follow), and knows no type the runner cannot map.
#[test]
fn schema_matches_the_rust_types() {
    let schema = load("schema.json");
    let types = schema["types"].as_object().expect("types");
    let mut problems = Vec::new();
    for (name, ty) in types {
        let Some(shape) = with_type!(name.as_str(), shape_of()) else {
            problems.push(format!("{name}: no Rust type in the runner"));
            continue;
        };
        let rust = match shape {
            Shape::Enum(n, v) => Some((n, "enum", v.to_vec())),
            Shape::Struct(n, f) => Some((n, "struct", f.to_vec())),
            Shape::Newtype(n) => Some((n, "newtype", vec![])),
            Shape::Other => None,
        };
        match (rust, schema_shape(name, ty)) {
            (None, Err(_)) => {}
            (Some((rust_name, kind, names)), Ok((schema_kind, schema_names))) => {
                if rust_name != name || kind != schema_kind || names != schema_names {
                    problems.push(format!(
                        "{name}: Rust has {kind} {rust_name} {names:?}, \
                         the schema {schema_kind} {schema_names:?}"
                    ));
                }
            }
            (rust, schema) => problems.push(format!("{name}: Rust {rust:?}, schema {schema:?}")),
        }
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}

/// The runner itself fails on a wrong case (so a green run means the
/// vectors were checked, not skipped).
#[test]
fn the_runner_rejects_wrong_cases() {
    let ping = Some(ProtocolId { id: 1, version: 1 });
    let case = |kind: &str, bytes: &str, value: Value| {
        json!({"kind": kind, "name": "t", "type": "PingRequest", "bytes": bytes,
               "value": value, "error": value})
    };
    let count = || json!("Count");
    assert!(run_case::<PingRequest>(ping, &case("golden", "01 00 01 01", count())).is_ok());
    let wrong_bytes = case("golden", "01 00 01 00", count());
    assert!(run_case::<PingRequest>(ping, &wrong_bytes).is_err());
    let wrong_value = case("golden", "01 00 01 01", json!({"Count": {}}));
    assert!(run_case::<PingRequest>(ping, &wrong_value).is_err());
    let wrong_error = case("decode_error", "01 00 01 02", json!("Truncated"));
    assert!(run_case::<PingRequest>(ping, &wrong_error).is_err());
    let no_error = case("decode_error", "01 00 01 01", json!("Truncated"));
    assert!(run_case::<PingRequest>(ping, &no_error).is_err());
    assert!(run_case::<PingRequest>(ping, &case("nonsense", "", count())).is_err());
}
