//! `GET /CertData.<hex(cert_hash)>-<cdv>` → `{"cert": bstr, "ca": bstr, "rca_chain": [bstr…]}`.

use std::fmt::Write as _;

use ciborium::Value;

use super::PkiError;

use super::x509::MAX_RCA_CHAIN;

/// CertData as served at `/CertData.<hash>-<cdv>`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertData {
    /// DER of the VAU signing certificate.
    pub cert: Vec<u8>,
    /// DER of the CA that issued `cert`.
    pub ca: Vec<u8>,
    /// DER cross certificates from a root the client trusts to the root that issued `ca`
    /// (may be empty).
    pub rca_chain: Vec<Vec<u8>>,
}

impl CertData {
    /// Canonical CBOR: a definite-length map with the keys `cert`, `ca`, `rca_chain`.
    pub fn to_cbor(&self) -> Vec<u8> {
        let len = self.cert.len()
            + self.ca.len()
            + self.rca_chain.iter().map(|c| c.len() + 9).sum::<usize>()
            + 40;
        let mut out = Vec::with_capacity(len);
        head(&mut out, 5, 3);
        text(&mut out, "cert");
        bytes(&mut out, &self.cert);
        text(&mut out, "ca");
        bytes(&mut out, &self.ca);
        text(&mut out, "rca_chain");
        head(&mut out, 4, self.rca_chain.len() as u64);
        for c in &self.rca_chain {
            bytes(&mut out, c);
        }
        out
    }

    /// Decodes CertData. Accepts indefinite-length maps, arrays and byte strings (Java/Jackson
    /// emits them), ignores unknown keys, and takes a missing `rca_chain` as empty.
    pub fn from_cbor(input: &[u8]) -> Result<Self, PkiError> {
        let malformed = |m: &str| PkiError::Malformed(format!("CertData: {m}"));
        let mut reader = input;
        let value: Value = ciborium::from_reader(&mut reader)
            .map_err(|e| PkiError::Malformed(format!("CertData: CBOR: {e}")))?;
        if !reader.is_empty() {
            return Err(malformed("trailing bytes after the CBOR map"));
        }
        let Value::Map(entries) = value else {
            return Err(malformed("not a CBOR map"));
        };
        let (mut cert, mut ca, mut rca_chain) = (None, None, None);
        for (key, value) in entries {
            let Value::Text(key) = key else {
                return Err(malformed("map key is not a text string"));
            };
            let slot = match key.as_str() {
                "cert" => &mut cert,
                "ca" => &mut ca,
                "rca_chain" => {
                    if rca_chain.is_some() {
                        return Err(malformed("duplicate key rca_chain"));
                    }
                    let Value::Array(items) = value else {
                        return Err(malformed("rca_chain is not an array"));
                    };
                    if items.len() > MAX_RCA_CHAIN {
                        return Err(malformed("rca_chain too long"));
                    }
                    let chain = items
                        .into_iter()
                        .map(|v| match v {
                            Value::Bytes(b) => Ok(b),
                            _ => Err(malformed("rca_chain entry is not a byte string")),
                        })
                        .collect::<Result<Vec<_>, _>>()?;
                    rca_chain = Some(chain);
                    continue;
                }
                _ => continue,
            };
            if slot.is_some() {
                return Err(malformed(&format!("duplicate key {key}")));
            }
            let Value::Bytes(b) = value else {
                return Err(malformed(&format!("{key} is not a byte string")));
            };
            *slot = Some(b);
        }
        Ok(Self {
            cert: cert.ok_or_else(|| malformed("missing cert"))?,
            ca: ca.ok_or_else(|| malformed("missing ca"))?,
            rca_chain: rca_chain.unwrap_or_default(),
        })
    }
}

/// `"/CertData.<lowercase hex of cert_hash>-<cdv>"`.
pub fn cert_data_path(cert_hash: &[u8; 32], cdv: u64) -> String {
    let mut path = String::with_capacity(10 + 64 + 1 + 20);
    path.push_str("/CertData.");
    for b in cert_hash {
        let _ = write!(path, "{b:02x}");
    }
    let _ = write!(path, "-{cdv}");
    path
}

/// CBOR initial byte(s) for `major` type with argument `n` (shortest form).
fn head(out: &mut Vec<u8>, major: u8, n: u64) {
    let m = major << 5;
    match n {
        0..=23 => out.push(m | n as u8),
        24..=0xff => out.extend_from_slice(&[m | 24, n as u8]),
        0x100..=0xffff => {
            out.push(m | 25);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        0x1_0000..=0xffff_ffff => {
            out.push(m | 26);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        }
        _ => {
            out.push(m | 27);
            out.extend_from_slice(&n.to_be_bytes());
        }
    }
}

fn text(out: &mut Vec<u8>, s: &str) {
    head(out, 3, s.len() as u64);
    out.extend_from_slice(s.as_bytes());
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    head(out, 2, b.len() as u64);
    out.extend_from_slice(b);
}
