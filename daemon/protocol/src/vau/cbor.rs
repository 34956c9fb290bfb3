//! CBOR maps with text keys, as the VAU messages use them. Decoding accepts indefinite-length
//! maps (Java servers emit them) and refuses trailing bytes and duplicate keys; encoding writes
//! definite-length maps in the given key order.

use ciborium::Value;

use super::VauError;

pub(crate) fn encode(value: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    // Writing into a Vec cannot fail.
    let _ = ciborium::into_writer(value, &mut out);
    out
}

pub(crate) fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(k, v)| (Value::Text(k.to_owned()), v))
            .collect(),
    )
}

/// A decoded CBOR map with typed accessors.
pub(crate) struct Map(Vec<(Value, Value)>);

pub(crate) fn decode(bytes: &[u8]) -> Result<Map, VauError> {
    let mut rest = bytes;
    let value: Value =
        ciborium::from_reader(&mut rest).map_err(|e| VauError::Cbor(e.to_string()))?;
    if !rest.is_empty() {
        return Err(VauError::Cbor(format!("{} trailing bytes", rest.len())));
    }
    Map::from_value(value, "message")
}

impl Map {
    fn from_value(value: Value, field: &'static str) -> Result<Self, VauError> {
        let Value::Map(entries) = value else {
            return Err(VauError::BadField {
                field,
                problem: "not a CBOR map".into(),
            });
        };
        for (i, (k, _)) in entries.iter().enumerate() {
            if entries[..i].iter().any(|(other, _)| other == k) {
                return Err(VauError::BadField {
                    field,
                    problem: format!("duplicate key {k:?}"),
                });
            }
        }
        Ok(Self(entries))
    }

    fn get(&self, key: &'static str) -> Result<&Value, VauError> {
        self.0
            .iter()
            .find(|(k, _)| matches!(k, Value::Text(t) if t == key))
            .map(|(_, v)| v)
            .ok_or(VauError::MissingField(key))
    }

    pub(crate) fn has(&self, key: &'static str) -> bool {
        self.get(key).is_ok()
    }

    pub(crate) fn bytes(&self, key: &'static str) -> Result<&[u8], VauError> {
        match self.get(key)? {
            Value::Bytes(b) => Ok(b),
            _ => Err(bad(key, "not a byte string")),
        }
    }

    pub(crate) fn bytes_n<const N: usize>(&self, key: &'static str) -> Result<[u8; N], VauError> {
        let b = self.bytes(key)?;
        b.try_into()
            .map_err(|_| bad(key, format!("{} bytes, expected {N}", b.len())))
    }

    pub(crate) fn text(&self, key: &'static str) -> Result<&str, VauError> {
        match self.get(key)? {
            Value::Text(t) => Ok(t),
            _ => Err(bad(key, "not a text string")),
        }
    }

    pub(crate) fn uint(&self, key: &'static str) -> Result<u64, VauError> {
        match self.get(key)? {
            Value::Integer(i) => u64::try_from(i128::from(*i)).map_err(|_| bad(key, "negative")),
            _ => Err(bad(key, "not an unsigned integer")),
        }
    }

    pub(crate) fn int(&self, key: &'static str) -> Result<i64, VauError> {
        match self.get(key)? {
            Value::Integer(i) => {
                i64::try_from(i128::from(*i)).map_err(|_| bad(key, "out of range"))
            }
            _ => Err(bad(key, "not an integer")),
        }
    }

    pub(crate) fn boolean(&self, key: &'static str) -> Result<bool, VauError> {
        match self.get(key)? {
            Value::Bool(b) => Ok(*b),
            _ => Err(bad(key, "not a boolean")),
        }
    }

    pub(crate) fn map(&self, key: &'static str) -> Result<Map, VauError> {
        Map::from_value(self.get(key)?.clone(), key)
    }

    /// Checks `MessageType`.
    pub(crate) fn expect_type(&self, expected: &'static str) -> Result<(), VauError> {
        let got = self.text("MessageType")?;
        if got == expected {
            Ok(())
        } else {
            Err(VauError::UnexpectedMessage {
                expected,
                got: got.to_owned(),
            })
        }
    }
}

fn bad(field: &'static str, problem: impl Into<String>) -> VauError {
    VauError::BadField {
        field,
        problem: problem.into(),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn indefinite_maps_decode_and_definite_maps_encode_in_order() {
        // {_ "a": h'01', "b": 7 } as a Java server would send it.
        let indefinite = [0xbf, 0x61, b'a', 0x41, 0x01, 0x61, b'b', 0x07, 0xff];
        let m = decode(&indefinite).unwrap();
        assert_eq!(m.bytes("a").unwrap(), &[1]);
        assert_eq!(m.uint("b").unwrap(), 7);
        let enc = encode(&map(vec![
            ("b", Value::Integer(7.into())),
            ("a", Value::Bytes(vec![1])),
        ]));
        assert_eq!(enc, [0xa2, 0x61, b'b', 0x07, 0x61, b'a', 0x41, 0x01]);
    }

    #[test]
    fn trailing_bytes_duplicates_and_wrong_types_are_refused() {
        assert!(matches!(decode(&[0xa0, 0x00]), Err(VauError::Cbor(_))));
        let dup = [0xa2, 0x61, b'a', 0x01, 0x61, b'a', 0x02];
        assert!(matches!(decode(&dup), Err(VauError::BadField { .. })));
        let m = decode(&[0xa1, 0x61, b'a', 0x20]).unwrap(); // {"a": -1}
        assert!(m.uint("a").is_err());
        assert_eq!(m.int("a").unwrap(), -1);
        assert!(matches!(m.bytes("zz"), Err(VauError::MissingField("zz"))));
        assert!(matches!(decode(&[0x01]), Err(VauError::BadField { .. })));
    }
}
