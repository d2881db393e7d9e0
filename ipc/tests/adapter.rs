//! Strict decoding changes nothing about what decodes, only how precisely a
//! refusal is named: every shape serde has (unit and newtype structs,
//! tuples, maps, each kind of enum variant, types with a compact binary
//! form) decodes through it exactly as postcard alone decodes it, and a
//! fault deep inside one of them still comes out as its own error.

use faultline_ipc::wire::{WireError, decode_body};
use heapless::{LinearMap, Vec};
use serde::{Deserialize, Serialize};

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Unit;

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Newtype(u16);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Pair(u8, bool);

#[derive(Debug, PartialEq, Serialize, Deserialize)]
enum Shape {
    Empty,
    Wrapped(Newtype),
    Tuple(u8, u8),
    Fields { a: u8, b: Option<u8> },
}

#[derive(Debug, PartialEq, Serialize, Deserialize)]
struct Everything {
    unit: Unit,
    pair: Pair,
    triple: (u8, u16, u32),
    shapes: Vec<Shape, 4>,
    map: LinearMap<u8, Shape, 2>,
}

fn sample() -> Everything {
    let mut map = LinearMap::new();
    map.insert(7, Shape::Empty).unwrap();
    map.insert(9, Shape::Tuple(1, 2)).unwrap();
    Everything {
        unit: Unit,
        pair: Pair(5, true),
        triple: (1, 300, 70_000),
        shapes: [
            Shape::Empty,
            Shape::Wrapped(Newtype(513)),
            Shape::Tuple(3, 4),
            Shape::Fields { a: 6, b: Some(7) },
        ]
        .into_iter()
        .collect(),
        map,
    }
}

#[test]
fn every_serde_shape_round_trips_through_strict_decoding() {
    let value = sample();
    let mut buf = [0u8; 256];
    let bytes = postcard::to_slice(&value, &mut buf).unwrap().to_vec();
    assert_eq!(decode_body::<Everything>(&bytes), Ok(value));
    // The same bytes, as postcard alone reads them.
    assert_eq!(postcard::from_bytes::<Everything>(&bytes), Ok(sample()));
}

#[test]
fn a_fault_inside_a_map_is_named_precisely() {
    // One entry, key 1, value: variant 9 of `Shape` (there are four).
    assert_eq!(
        decode_body::<LinearMap<u8, Shape, 2>>(&[1, 1, 9]),
        Err(WireError::UnknownVariant)
    );
    // Three entries for a map of two.
    assert_eq!(
        decode_body::<LinearMap<u8, u8, 2>>(&[3, 1, 1, 2, 2, 3, 3]),
        Err(WireError::FieldTooLong { len: 3 })
    );
    // A map cut short.
    assert_eq!(
        decode_body::<LinearMap<u8, u8, 2>>(&[2, 1, 1, 2]),
        Err(WireError::Truncated)
    );
}

#[test]
fn a_fault_inside_a_tuple_variant_or_newtype_is_named_precisely() {
    // Shape::Wrapped(Newtype(u16)) with an overlong varint.
    assert_eq!(
        decode_body::<Shape>(&[1, 0x80, 0x80, 0x80, 0x80]),
        Err(WireError::BadValue)
    );
    // Shape::Fields with an Option tag of 2.
    assert_eq!(decode_body::<Shape>(&[3, 1, 2]), Err(WireError::BadValue));
    // Pair's bool is 2.
    assert_eq!(decode_body::<Pair>(&[1, 2]), Err(WireError::BadValue));
    assert_eq!(decode_body::<Shape>(&[2, 1]), Err(WireError::Truncated));
}

#[test]
fn types_with_a_compact_binary_form_use_it() {
    // An address is four bytes in a binary format, a string in a readable
    // one; postcard is binary.
    let ip = core::net::Ipv4Addr::new(10, 0, 2, 15);
    assert_eq!(decode_body(&[10, 0, 2, 15]), Ok(ip));
}
