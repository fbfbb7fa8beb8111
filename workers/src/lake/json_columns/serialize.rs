//! Rows appended from values already decoded (serde `Serialize`), by the
//! same rules as a JSON object: fields by name, unnamed fields skipped,
//! missing fields null, each value through the JSON path's own visitor. The
//! raw topic uses it: its strict check has decoded the transaction, and a
//! second parse of the same bytes would cost as much again.

use std::fmt;

use serde::de::{self, Visitor};
use serde::ser::{self, Impossible, Serialize, SerializeStruct};

use super::{Column, StructColumn, Value};

/// Why a value did not fit; the message is the JSON path's.
#[derive(Debug)]
pub struct NotFitting(pub String);

impl fmt::Display for NotFitting {
    fn fmt(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for NotFitting {}

impl ser::Error for NotFitting {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NotFitting(msg.to_string())
    }
}

impl de::Error for NotFitting {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        NotFitting(msg.to_string())
    }
}

/// A whole row: a struct whose fields fill `StructColumn`'s children.
pub struct RowSerializer<'c>(pub &'c mut StructColumn);

/// The fields of one struct being written.
pub struct FieldsSerializer<'c> {
    column: &'c mut StructColumn,
    next: usize,
    /// A nested struct: its validity, set once every field is in.
    validity: Option<&'c mut super::Validity>,
}

impl<'c> FieldsSerializer<'c> {
    fn new(column: &'c mut StructColumn, validity: Option<&'c mut super::Validity>) -> Self {
        column.seen.fill(false);
        Self {
            column,
            next: 0,
            validity,
        }
    }
}

impl SerializeStruct for FieldsSerializer<'_> {
    type Ok = ();
    type Error = NotFitting;

    fn serialize_field<T: ?Sized + Serialize>(
        &mut self,
        name: &'static str,
        value: &T,
    ) -> Result<(), NotFitting> {
        let column = &mut *self.column;
        let hinted = column
            .static_names
            .get(self.next)
            .copied()
            .flatten()
            .is_some_and(|known| std::ptr::eq(known, name));
        let i = if hinted {
            self.next
        } else {
            let Some(i) = column.field_index(name, self.next) else {
                return Ok(());
            };
            column.static_names[i] = Some(name);
            i
        };
        if std::mem::replace(&mut column.seen[i], true) {
            return Err(NotFitting(format!("field {name} appears twice")));
        }
        value
            .serialize(ValueSerializer(&mut column.children[i]))
            .map_err(|e| NotFitting(format!("field {name}: {e}")))?;
        self.next = i + 1;
        Ok(())
    }

    fn end(self) -> Result<(), NotFitting> {
        for (child, seen) in self.column.children.iter_mut().zip(&self.column.seen) {
            if !seen {
                child.push_null();
            }
        }
        if let Some(validity) = self.validity {
            validity.push(true);
        }
        Ok(())
    }
}

fn unsupported<T>(what: &str) -> Result<T, NotFitting> {
    Err(NotFitting(format!("{what} cannot be landed in a column")))
}

/// Serializer methods that only say the value is not a struct.
macro_rules! only_structs {
    () => {
        fn serialize_bool(self, _: bool) -> Result<(), NotFitting> {
            unsupported("a boolean row")
        }
        fn serialize_i64(self, _: i64) -> Result<(), NotFitting> {
            unsupported("a number row")
        }
        fn serialize_f64(self, _: f64) -> Result<(), NotFitting> {
            unsupported("a number row")
        }
        fn serialize_str(self, _: &str) -> Result<(), NotFitting> {
            unsupported("a string row")
        }
        fn serialize_none(self) -> Result<(), NotFitting> {
            unsupported("a null row")
        }
        fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), NotFitting> {
            value.serialize(self)
        }
        fn serialize_unit(self) -> Result<(), NotFitting> {
            unsupported("a null row")
        }
    };
}

/// The parts of a serializer no landed value uses: sequences, maps, enums, bytes.
macro_rules! no_compounds {
    () => {
        type SerializeSeq = Impossible<(), NotFitting>;
        type SerializeTuple = Impossible<(), NotFitting>;
        type SerializeTupleStruct = Impossible<(), NotFitting>;
        type SerializeTupleVariant = Impossible<(), NotFitting>;
        type SerializeMap = Impossible<(), NotFitting>;
        type SerializeStructVariant = Impossible<(), NotFitting>;

        fn serialize_i8(self, v: i8) -> Result<(), NotFitting> {
            self.serialize_i64(v.into())
        }
        fn serialize_i16(self, v: i16) -> Result<(), NotFitting> {
            self.serialize_i64(v.into())
        }
        fn serialize_i32(self, v: i32) -> Result<(), NotFitting> {
            self.serialize_i64(v.into())
        }
        fn serialize_u8(self, v: u8) -> Result<(), NotFitting> {
            self.serialize_i64(v.into())
        }
        fn serialize_u16(self, v: u16) -> Result<(), NotFitting> {
            self.serialize_i64(v.into())
        }
        fn serialize_u32(self, v: u32) -> Result<(), NotFitting> {
            self.serialize_i64(v.into())
        }
        fn serialize_u64(self, v: u64) -> Result<(), NotFitting> {
            match i64::try_from(v) {
                Ok(v) => self.serialize_i64(v),
                Err(_) => unsupported("an integer above 2^63"),
            }
        }
        fn serialize_f32(self, v: f32) -> Result<(), NotFitting> {
            self.serialize_f64(v.into())
        }
        fn serialize_char(self, v: char) -> Result<(), NotFitting> {
            self.serialize_str(v.encode_utf8(&mut [0; 4]))
        }
        fn serialize_bytes(self, _: &[u8]) -> Result<(), NotFitting> {
            unsupported("bytes")
        }
        fn serialize_unit_struct(self, _: &'static str) -> Result<(), NotFitting> {
            self.serialize_unit()
        }
        fn serialize_unit_variant(
            self,
            _: &'static str,
            _: u32,
            variant: &'static str,
        ) -> Result<(), NotFitting> {
            self.serialize_str(variant)
        }
        fn serialize_newtype_struct<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            value: &T,
        ) -> Result<(), NotFitting> {
            value.serialize(self)
        }
        fn serialize_newtype_variant<T: ?Sized + Serialize>(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: &T,
        ) -> Result<(), NotFitting> {
            unsupported("an enum")
        }
        fn serialize_seq(self, _: Option<usize>) -> Result<Self::SerializeSeq, NotFitting> {
            unsupported("an array")
        }
        fn serialize_tuple(self, _: usize) -> Result<Self::SerializeTuple, NotFitting> {
            unsupported("an array")
        }
        fn serialize_tuple_struct(
            self,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleStruct, NotFitting> {
            unsupported("an array")
        }
        fn serialize_tuple_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeTupleVariant, NotFitting> {
            unsupported("an enum")
        }
        fn serialize_map(self, _: Option<usize>) -> Result<Self::SerializeMap, NotFitting> {
            unsupported("a map")
        }
        fn serialize_struct_variant(
            self,
            _: &'static str,
            _: u32,
            _: &'static str,
            _: usize,
        ) -> Result<Self::SerializeStructVariant, NotFitting> {
            unsupported("an enum")
        }
    };
}

impl<'c> ser::Serializer for RowSerializer<'c> {
    type Ok = ();
    type Error = NotFitting;
    type SerializeStruct = FieldsSerializer<'c>;

    no_compounds!();
    only_structs!();

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<FieldsSerializer<'c>, NotFitting> {
        Ok(FieldsSerializer::new(self.0, None))
    }
}

/// One value into one column, through the JSON path's visitor.
struct ValueSerializer<'c>(&'c mut Column);

impl<'c> ser::Serializer for ValueSerializer<'c> {
    type Ok = ();
    type Error = NotFitting;
    type SerializeStruct = FieldsSerializer<'c>;

    no_compounds!();

    fn serialize_bool(self, v: bool) -> Result<(), NotFitting> {
        Value(self.0).visit_bool(v)
    }
    fn serialize_i64(self, v: i64) -> Result<(), NotFitting> {
        Value(self.0).visit_i64(v)
    }
    fn serialize_f64(self, v: f64) -> Result<(), NotFitting> {
        Value(self.0).visit_f64(v)
    }
    fn serialize_str(self, v: &str) -> Result<(), NotFitting> {
        Value(self.0).visit_str(v)
    }
    fn serialize_none(self) -> Result<(), NotFitting> {
        Value(self.0).visit_unit()
    }
    fn serialize_some<T: ?Sized + Serialize>(self, value: &T) -> Result<(), NotFitting> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<(), NotFitting> {
        Value(self.0).visit_unit()
    }

    fn serialize_struct(
        self,
        _: &'static str,
        _: usize,
    ) -> Result<FieldsSerializer<'c>, NotFitting> {
        match self.0 {
            Column::Struct(column, validity) => Ok(FieldsSerializer::new(column, Some(validity))),
            other => Err(de::Error::invalid_type(de::Unexpected::Map, &Value(other))),
        }
    }
}
