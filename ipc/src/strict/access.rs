//! The visitor side of the strict adapter: every visitor, sequence, map,
//! enum and seed postcard calls is wrapped so that a type's refusals reach
//! [`super::decode`] as precise faults (see the parent module).

use super::{Fault, Parked, Strict, StrictError, lift, lower};
use core::fmt;
use serde::de::{
    self, DeserializeSeed, Deserializer, EnumAccess, MapAccess, SeqAccess, VariantAccess, Visitor,
};

/// A type's visitor, seen through the adapter.
pub(super) struct Wrap<'c, V> {
    pub(super) inner: V,
    pub(super) cell: Parked<'c>,
}

macro_rules! forward_visit {
    ($($method:ident($ty:ty))*) => {$(
        fn $method<E: de::Error>(self, v: $ty) -> Result<Self::Value, E> {
            let cell = self.cell;
            self.inner.$method(v).map_err(|e| lower(cell, e))
        }
    )*};
}

impl<'de, V: Visitor<'de>> Visitor<'de> for Wrap<'_, V> {
    type Value = V::Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.inner.expecting(f)
    }

    forward_visit!(
        visit_bool(bool) visit_i8(i8) visit_i16(i16) visit_i32(i32) visit_i64(i64)
        visit_i128(i128) visit_u8(u8) visit_u16(u16) visit_u32(u32) visit_u64(u64)
        visit_u128(u128) visit_f32(f32) visit_f64(f64) visit_char(char) visit_str(&str)
        visit_borrowed_str(&'de str) visit_bytes(&[u8]) visit_borrowed_bytes(&'de [u8])
    );

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        let cell = self.cell;
        self.inner.visit_none().map_err(|e| lower(cell, e))
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        let cell = self.cell;
        self.inner.visit_unit().map_err(|e| lower(cell, e))
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let cell = self.cell;
        let d = Strict { inner: d, cell };
        self.inner.visit_some(d).map_err(|e| lower(cell, e))
    }

    fn visit_newtype_struct<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let cell = self.cell;
        let d = Strict { inner: d, cell };
        self.inner
            .visit_newtype_struct(d)
            .map_err(|e| lower(cell, e))
    }

    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
        let cell = self.cell;
        let seq = Wrap { inner: seq, cell };
        self.inner.visit_seq(seq).map_err(|e| lower(cell, e))
    }

    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
        let cell = self.cell;
        let map = Wrap { inner: map, cell };
        self.inner.visit_map(map).map_err(|e| lower(cell, e))
    }

    fn visit_enum<A: EnumAccess<'de>>(self, data: A) -> Result<Self::Value, A::Error> {
        let cell = self.cell;
        let data = Wrap { inner: data, cell };
        self.inner.visit_enum(data).map_err(|e| lower(cell, e))
    }
}

impl<'de, A: SeqAccess<'de>> SeqAccess<'de> for Wrap<'_, A> {
    type Error = StrictError<A::Error>;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Self::Error> {
        let cell = self.cell;
        let seed = Seed { inner: seed, cell };
        self.inner
            .next_element_seed(seed)
            .map_err(|e| lift(cell, e))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, A: MapAccess<'de>> MapAccess<'de> for Wrap<'_, A> {
    type Error = StrictError<A::Error>;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Self::Error> {
        let cell = self.cell;
        let seed = Seed { inner: seed, cell };
        self.inner.next_key_seed(seed).map_err(|e| lift(cell, e))
    }

    fn next_value_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        let cell = self.cell;
        let seed = Seed { inner: seed, cell };
        self.inner.next_value_seed(seed).map_err(|e| lift(cell, e))
    }

    fn size_hint(&self) -> Option<usize> {
        self.inner.size_hint()
    }
}

impl<'de, 'c, A: EnumAccess<'de>> EnumAccess<'de> for Wrap<'c, A> {
    type Error = StrictError<A::Error>;
    type Variant = Wrap<'c, A::Variant>;

    fn variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<(T::Value, Self::Variant), Self::Error> {
        let cell = self.cell;
        let seed = VariantSeed { inner: seed, cell };
        match self.inner.variant_seed(seed) {
            Ok((value, variant)) => Ok((
                value,
                Wrap {
                    inner: variant,
                    cell,
                },
            )),
            Err(e) => Err(lift(cell, e)),
        }
    }
}

impl<'de, A: VariantAccess<'de>> VariantAccess<'de> for Wrap<'_, A> {
    type Error = StrictError<A::Error>;

    fn unit_variant(self) -> Result<(), Self::Error> {
        let cell = self.cell;
        self.inner.unit_variant().map_err(|e| lift(cell, e))
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(
        self,
        seed: T,
    ) -> Result<T::Value, Self::Error> {
        let cell = self.cell;
        let seed = Seed { inner: seed, cell };
        self.inner
            .newtype_variant_seed(seed)
            .map_err(|e| lift(cell, e))
    }

    fn tuple_variant<V: Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let cell = self.cell;
        let v = Wrap {
            inner: visitor,
            cell,
        };
        self.inner.tuple_variant(len, v).map_err(|e| lift(cell, e))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        let cell = self.cell;
        let v = Wrap {
            inner: visitor,
            cell,
        };
        self.inner
            .struct_variant(fields, v)
            .map_err(|e| lift(cell, e))
    }
}

/// A nested value (element, key, field of a variant), decoded through the
/// adapter.
struct Seed<'c, S> {
    inner: S,
    cell: Parked<'c>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for Seed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let cell = self.cell;
        let d = Strict { inner: d, cell };
        self.inner.deserialize(d).map_err(|e| lower(cell, e))
    }
}

/// An enum's discriminant: whatever the type refuses here is an unknown
/// variant.
struct VariantSeed<'c, S> {
    inner: S,
    cell: Parked<'c>,
}

impl<'de, S: DeserializeSeed<'de>> DeserializeSeed<'de> for VariantSeed<'_, S> {
    type Value = S::Value;

    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        let cell = self.cell;
        let d = Strict { inner: d, cell };
        self.inner.deserialize(d).map_err(|e| match e {
            StrictError::Fault(_) => lower(cell, StrictError::Fault(Fault::UnknownVariant)),
            StrictError::Inner(e) => e,
        })
    }
}
