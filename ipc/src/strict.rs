//! Precise decode errors on top of postcard.
//!
//! postcard turns every error that a *type* raises while decoding (serde's
//! `invalid_value`, `invalid_length`, `custom`, ...) into the one code
//! `SerdeDeCustom`, so on its own it cannot tell an unknown enum variant
//! from a `heapless::Vec` longer than its capacity. [`decode`] runs the
//! target type against a thin adapter around postcard's deserializer: the
//! adapter gives the type's visitors an error type of our own
//! ([`StrictError`]) that remembers *which* serde error was raised, and
//! whether it was raised while reading an enum discriminant.
//!
//! Where postcard's own code needs one of its own errors back (the visitor
//! interfaces are generic over the deserializer's error type), the adapter
//! parks the precise [`Fault`] in a `Cell` on the caller's stack and hands
//! postcard a placeholder, then recovers the fault on the way out. No
//! statics, no allocation; the wire format is untouched (postcard still
//! does all the reading).

mod access;

use crate::wire::WireError;
use access::Wrap;
use core::cell::Cell;
use core::fmt;
use serde::de::{self, Deserializer, Visitor};

/// What a type's own decoding code refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Fault {
    /// An enum discriminant names no variant.
    UnknownVariant,
    /// A bounded container got more elements than it holds; `len` is the
    /// length seen (at least capacity + 1).
    TooLong { len: usize },
    /// Any other value the type refused.
    BadValue,
}

/// The error the adapter reports: a precise [`Fault`], or the inner
/// deserializer's own error.
#[derive(Debug)]
pub(crate) enum StrictError<E> {
    Fault(Fault),
    Inner(E),
}

impl<E: fmt::Display> fmt::Display for StrictError<E> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Fault(fault) => write!(f, "{fault:?}"),
            Self::Inner(e) => e.fmt(f),
        }
    }
}

impl<E: fmt::Debug + fmt::Display> core::error::Error for StrictError<E> {}

impl<E: de::Error> de::Error for StrictError<E> {
    fn custom<T: fmt::Display>(_msg: T) -> Self {
        Self::Fault(Fault::BadValue)
    }

    fn invalid_length(len: usize, _exp: &dyn de::Expected) -> Self {
        Self::Fault(Fault::TooLong { len })
    }

    fn unknown_variant(_variant: &str, _expected: &'static [&'static str]) -> Self {
        Self::Fault(Fault::UnknownVariant)
    }
}

/// Decodes a `T` from all of `bytes`: nothing may be left over.
///
/// One function for the whole job (no wrapper returning the value up
/// another frame): in unoptimised builds every frame that holds a decoded
/// message costs its size in stack.
pub(crate) fn decode_exact<'de, T: de::Deserialize<'de>>(bytes: &'de [u8]) -> Result<T, WireError> {
    let cell = Cell::new(None);
    let mut inner = postcard::Deserializer::from_bytes(bytes);
    let strict = Strict {
        inner: &mut inner,
        cell: &cell,
    };
    let value = match T::deserialize(strict) {
        Ok(value) => value,
        Err(e) => return Err(WireError::from_strict(e)),
    };
    match inner.finalize() {
        Ok([]) => Ok(value),
        Ok(rest) => Err(WireError::TrailingBytes { extra: rest.len() }),
        Err(e) => Err(WireError::from_postcard(&e)),
    }
}

/// Where a precise fault waits while postcard carries a placeholder.
type Parked<'c> = &'c Cell<Option<Fault>>;

/// An error came up from the inner deserializer: if it is the placeholder
/// for a parked fault, take the fault back.
fn lift<E>(cell: Parked<'_>, e: E) -> StrictError<E> {
    cell.take()
        .map_or(StrictError::Inner(e), StrictError::Fault)
}

/// An error goes down into the inner deserializer: park a fault and hand
/// over a placeholder.
fn lower<E: de::Error>(cell: Parked<'_>, e: StrictError<E>) -> E {
    match e {
        StrictError::Fault(fault) => {
            cell.set(Some(fault));
            E::custom("strict decoding fault")
        }
        StrictError::Inner(e) => e,
    }
}

/// A deserializer seen through the adapter.
struct Strict<'c, D> {
    inner: D,
    cell: Parked<'c>,
}

macro_rules! forward_deserialize {
    ($($method:ident)*) => {$(
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            let cell = self.cell;
            self.inner.$method(Wrap { inner: visitor, cell }).map_err(|e| lift(cell, e))
        }
    )*};
}

impl<'de, D: Deserializer<'de>> Deserializer<'de> for Strict<'_, D> {
    type Error = StrictError<D::Error>;

    forward_deserialize!(
        deserialize_any deserialize_bool deserialize_i8 deserialize_i16 deserialize_i32
        deserialize_i64 deserialize_i128 deserialize_u8 deserialize_u16 deserialize_u32
        deserialize_u64 deserialize_u128 deserialize_f32 deserialize_f64 deserialize_char
        deserialize_str deserialize_string deserialize_bytes deserialize_byte_buf
        deserialize_option deserialize_unit deserialize_seq deserialize_map
        deserialize_identifier deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let cell = self.cell;
        let v = Wrap {
            inner: visitor,
            cell,
        };
        self.inner
            .deserialize_unit_struct(name, v)
            .map_err(|e| lift(cell, e))
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let cell = self.cell;
        let v = Wrap {
            inner: visitor,
            cell,
        };
        self.inner
            .deserialize_newtype_struct(name, v)
            .map_err(|e| lift(cell, e))
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let cell = self.cell;
        let v = Wrap {
            inner: visitor,
            cell,
        };
        self.inner
            .deserialize_tuple(len, v)
            .map_err(|e| lift(cell, e))
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let cell = self.cell;
        let v = Wrap {
            inner: visitor,
            cell,
        };
        self.inner
            .deserialize_tuple_struct(name, len, v)
            .map_err(|e| lift(cell, e))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let cell = self.cell;
        let v = Wrap {
            inner: visitor,
            cell,
        };
        self.inner
            .deserialize_struct(name, fields, v)
            .map_err(|e| lift(cell, e))
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let cell = self.cell;
        let v = Wrap {
            inner: visitor,
            cell,
        };
        self.inner
            .deserialize_enum(name, variants, v)
            .map_err(|e| lift(cell, e))
    }

    fn is_human_readable(&self) -> bool {
        self.inner.is_human_readable()
    }
}
