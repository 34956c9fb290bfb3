//! The handshake messages with their exact CBOR keys (epa-protocol.md §2.3) and the Restart and
//! Error messages (§2.11). Decoders take the wire bytes; the transcript always hashes those
//! bytes, never a re-encoding.

use ciborium::Value;
use p256::PublicKey;
use p256::elliptic_curve::sec1::ToSec1Point;

use super::VauError;
use super::cbor::{Map, decode, encode, map};
use crate::kyber::{self, KyberPublicKey};

fn point_value(pk: &PublicKey) -> Value {
    let p = pk.to_sec1_point(false);
    let coord = |c: Option<&[u8]>| Value::Bytes(c.map(<[u8]>::to_vec).unwrap_or_default());
    map(vec![
        ("crv", Value::Text("P-256".into())),
        ("x", coord(p.x().map(|x| x.as_slice()))),
        ("y", coord(p.y().map(|y| y.as_slice()))),
    ])
}

fn point_from(m: &Map, field: &'static str) -> Result<PublicKey, VauError> {
    let p = m.map(field)?;
    if p.text("crv")? != "P-256" {
        return Err(VauError::BadField {
            field,
            problem: "curve is not P-256".into(),
        });
    }
    let x: [u8; 32] = p.bytes_n("x")?;
    let y: [u8; 32] = p.bytes_n("y")?;
    let sec1 = [&[0x04][..], &x, &y].concat();
    // Rejects points off the curve and the identity.
    PublicKey::from_sec1_bytes(&sec1).map_err(|_| VauError::BadPoint(field))
}

fn kyber_ct(m: &Map, field: &'static str) -> Result<Vec<u8>, VauError> {
    let ct = m.bytes(field)?;
    if ct.len() != kyber::CIPHERTEXT_LEN {
        return Err(VauError::BadField {
            field,
            problem: format!("{} bytes, expected {}", ct.len(), kyber::CIPHERTEXT_LEN),
        });
    }
    Ok(ct.to_vec())
}

/// M1: the client's ephemeral keys.
pub struct M1 {
    pub ecdh_pk: PublicKey,
    pub kyber_pk: KyberPublicKey,
}

impl M1 {
    pub fn encode(&self) -> Vec<u8> {
        encode(&map(vec![
            ("MessageType", Value::Text("M1".into())),
            ("ECDH_PK", point_value(&self.ecdh_pk)),
            (
                "Kyber768_PK",
                Value::Bytes(self.kyber_pk.as_bytes().to_vec()),
            ),
        ]))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VauError> {
        let m = decode(bytes)?;
        m.expect_type("M1")?;
        Ok(Self {
            ecdh_pk: point_from(&m, "ECDH_PK")?,
            kyber_pk: KyberPublicKey::from_bytes(m.bytes("Kyber768_PK")?)?,
        })
    }
}

/// M2: encapsulations to the client's ephemeral keys, and the server's signed keys under K1.
pub struct M2 {
    pub ecdh_ct: PublicKey,
    pub kyber_ct: Vec<u8>,
    pub aead_ct: Vec<u8>,
}

impl M2 {
    pub fn encode(&self) -> Vec<u8> {
        encode(&map(vec![
            ("MessageType", Value::Text("M2".into())),
            ("ECDH_ct", point_value(&self.ecdh_ct)),
            ("Kyber768_ct", Value::Bytes(self.kyber_ct.clone())),
            ("AEAD_ct", Value::Bytes(self.aead_ct.clone())),
        ]))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VauError> {
        let m = decode(bytes)?;
        m.expect_type("M2")?;
        Ok(Self {
            ecdh_ct: point_from(&m, "ECDH_ct")?,
            kyber_ct: kyber_ct(&m, "Kyber768_ct")?,
            aead_ct: m.bytes("AEAD_ct")?.to_vec(),
        })
    }
}

/// The plaintext of M2.AEAD_ct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedPublicKeys {
    /// The CBOR-encoded [`VauPublicKeys`], signed as these exact bytes.
    pub signed_pub_keys: Vec<u8>,
    /// ES256, raw r‖s.
    pub signature: Vec<u8>,
    pub cert_hash: [u8; 32],
    pub cdv: u64,
    pub ocsp_response: Vec<u8>,
}

impl SignedPublicKeys {
    pub fn encode(&self) -> Vec<u8> {
        encode(&map(vec![
            (
                "signed_pub_keys",
                Value::Bytes(self.signed_pub_keys.clone()),
            ),
            ("signature-ES256", Value::Bytes(self.signature.clone())),
            ("cert_hash", Value::Bytes(self.cert_hash.to_vec())),
            ("cdv", Value::Integer(self.cdv.into())),
            ("ocsp_response", Value::Bytes(self.ocsp_response.clone())),
        ]))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VauError> {
        let m = decode(bytes)?;
        Ok(Self {
            signed_pub_keys: m.bytes("signed_pub_keys")?.to_vec(),
            signature: m.bytes("signature-ES256")?.to_vec(),
            cert_hash: m.bytes_n("cert_hash")?,
            cdv: m.uint("cdv")?,
            ocsp_response: m.bytes("ocsp_response")?.to_vec(),
        })
    }
}

/// A VAU instance's long-lived keys, as signed.
#[derive(Clone)]
pub struct VauPublicKeys {
    pub ecdh_pk: PublicKey,
    pub kyber_pk: KyberPublicKey,
    pub iat: u64,
    pub exp: u64,
    pub comment: String,
}

impl VauPublicKeys {
    pub fn encode(&self) -> Vec<u8> {
        encode(&map(vec![
            ("ECDH_PK", point_value(&self.ecdh_pk)),
            (
                "Kyber768_PK",
                Value::Bytes(self.kyber_pk.as_bytes().to_vec()),
            ),
            ("iat", Value::Integer(self.iat.into())),
            ("exp", Value::Integer(self.exp.into())),
            ("comment", Value::Text(self.comment.clone())),
        ]))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VauError> {
        let m = decode(bytes)?;
        Ok(Self {
            ecdh_pk: point_from(&m, "ECDH_PK")?,
            kyber_pk: KyberPublicKey::from_bytes(m.bytes("Kyber768_PK")?)?,
            iat: m.uint("iat")?,
            exp: m.uint("exp")?,
            comment: m.text("comment")?.to_owned(),
        })
    }
}

/// M3: the client's encapsulations to the server's long-lived keys (under K1) and its key
/// confirmation (under K2).
pub struct M3 {
    pub aead_ct: Vec<u8>,
    pub aead_ct_key_confirmation: Vec<u8>,
}

impl M3 {
    pub fn encode(&self) -> Vec<u8> {
        encode(&map(vec![
            ("MessageType", Value::Text("M3".into())),
            ("AEAD_ct", Value::Bytes(self.aead_ct.clone())),
            (
                "AEAD_ct_key_confirmation",
                Value::Bytes(self.aead_ct_key_confirmation.clone()),
            ),
        ]))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VauError> {
        let m = decode(bytes)?;
        m.expect_type("M3")?;
        Ok(Self {
            aead_ct: m.bytes("AEAD_ct")?.to_vec(),
            aead_ct_key_confirmation: m.bytes("AEAD_ct_key_confirmation")?.to_vec(),
        })
    }
}

/// The plaintext of M3.AEAD_ct.
pub struct M3Inner {
    pub ecdh_ct: PublicKey,
    pub kyber_ct: Vec<u8>,
    pub erp: bool,
    pub eso: bool,
}

impl M3Inner {
    pub fn encode(&self) -> Vec<u8> {
        encode(&map(vec![
            ("ECDH_ct", point_value(&self.ecdh_ct)),
            ("Kyber768_ct", Value::Bytes(self.kyber_ct.clone())),
            ("ERP", Value::Bool(self.erp)),
            ("ESO", Value::Bool(self.eso)),
        ]))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VauError> {
        let m = decode(bytes)?;
        Ok(Self {
            ecdh_ct: point_from(&m, "ECDH_ct")?,
            kyber_ct: kyber_ct(&m, "Kyber768_ct")?,
            erp: m.boolean("ERP")?,
            eso: m.boolean("ESO")?,
        })
    }
}

/// M4: the server's key confirmation.
pub struct M4 {
    pub aead_ct_key_confirmation: Vec<u8>,
}

impl M4 {
    pub fn encode(&self) -> Vec<u8> {
        encode(&map(vec![
            ("MessageType", Value::Text("M4".into())),
            (
                "AEAD_ct_key_confirmation",
                Value::Bytes(self.aead_ct_key_confirmation.clone()),
            ),
        ]))
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, VauError> {
        let m = decode(bytes)?;
        m.expect_type("M4")?;
        Ok(Self {
            aead_ct_key_confirmation: m.bytes("AEAD_ct_key_confirmation")?.to_vec(),
        })
    }
}

/// `{"MessageType": "Restart", "KeyID": bstr}`: the server lost the channel.
pub fn encode_restart(key_id: &[u8; 32]) -> Vec<u8> {
    encode(&map(vec![
        ("MessageType", Value::Text("Restart".into())),
        ("KeyID", Value::Bytes(key_id.to_vec())),
    ]))
}

/// `{"MessageType": "Error", "ErrorCode": int, "ErrorMessage": tstr}`.
pub fn encode_error(code: i64, message: &str) -> Vec<u8> {
    encode(&map(vec![
        ("MessageType", Value::Text("Error".into())),
        ("ErrorCode", Value::Integer(code.into())),
        ("ErrorMessage", Value::Text(message.to_owned())),
    ]))
}

/// A CBOR control message in place of an encrypted body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ControlMessage {
    Restart { key_id: [u8; 32] },
    Error { code: i64, message: String },
}

pub fn decode_control(bytes: &[u8]) -> Result<ControlMessage, VauError> {
    let m = decode(bytes)?;
    match m.text("MessageType")? {
        "Restart" => Ok(ControlMessage::Restart {
            key_id: m.bytes_n("KeyID")?,
        }),
        "Error" => Ok(ControlMessage::Error {
            code: m.int("ErrorCode")?,
            message: if m.has("ErrorMessage") {
                m.text("ErrorMessage")?.to_owned()
            } else {
                String::new()
            },
        }),
        other => Err(VauError::UnexpectedMessage {
            expected: "Restart or Error",
            got: other.to_owned(),
        }),
    }
}
