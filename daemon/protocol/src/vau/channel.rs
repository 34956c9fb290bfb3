//! Encrypted application messages after the handshake (epa-protocol.md §2.7, §2.8): a 43-byte
//! header as AAD, IV = 4 random bytes ‖ 8-byte counter, AES-256-GCM. One request in flight per
//! channel: the client checks that each response answers its last request; the server rejects
//! every counter that is not above the highest it has seen.

use rand_core::CryptoRng;

use super::VauError;
use std::ops::Range;

use super::keys::{IV_LEN, K2, SymKey, TAG_LEN, open, open_in_place, seal_in_place, seal_parts};
use super::messages::{ControlMessage, decode_control};

pub const VERSION: u8 = 2;
pub const HEADER_LEN: usize = 43;
/// Header + IV + tag.
pub const OVERHEAD: usize = HEADER_LEN + IV_LEN + TAG_LEN;
/// The room before an inner request that is sealed in place.
pub const HEADROOM: usize = HEADER_LEN + IV_LEN;

/// Production (PU, flag 1) or a test/reference environment (flag 0). Never mixed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Environment {
    Production,
    Test,
}

impl Environment {
    pub fn pu_flag(self) -> u8 {
        match self {
            Environment::Production => 1,
            Environment::Test => 0,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    Request = 1,
    Response = 2,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Header {
    pub pu: u8,
    pub direction: Direction,
    pub counter: u64,
    pub key_id: [u8; 32],
}

impl Header {
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut h = [0u8; HEADER_LEN];
        h[0] = VERSION;
        h[1] = self.pu;
        h[2] = self.direction as u8;
        h[3..11].copy_from_slice(&self.counter.to_be_bytes());
        h[11..43].copy_from_slice(&self.key_id);
        h
    }

    /// Parses the header of an encrypted message (`bytes` is the whole body).
    pub fn decode(bytes: &[u8]) -> Result<Self, VauError> {
        if bytes.len() < OVERHEAD {
            return Err(VauError::TooShort(bytes.len()));
        }
        if bytes[0] != VERSION {
            return Err(VauError::Version(bytes[0]));
        }
        let direction = match bytes[2] {
            1 => Direction::Request,
            2 => Direction::Response,
            other => return Err(VauError::Direction(other)),
        };
        let mut counter = [0u8; 8];
        counter.copy_from_slice(&bytes[3..11]);
        let mut key_id = [0u8; 32];
        key_id.copy_from_slice(&bytes[11..43]);
        Ok(Self {
            pu: bytes[1],
            direction,
            counter: u64::from_be_bytes(counter),
            key_id,
        })
    }
}

/// `header ‖ IV ‖ ct ‖ tag` with the header as AAD.
pub fn seal_message(key: &SymKey, header: &Header, iv: [u8; IV_LEN], plaintext: &[u8]) -> Vec<u8> {
    seal_message_parts(key, header, iv, &[plaintext])
}

/// [`seal_message`] with the plaintext in pieces, each copied once.
pub fn seal_message_parts(
    key: &SymKey,
    header: &Header,
    iv: [u8; IV_LEN],
    plaintext: &[&[u8]],
) -> Vec<u8> {
    let h = header.encode();
    seal_parts(key, &h, iv, &h, plaintext)
}

/// Opens a message whose header was already checked.
pub fn open_message(key: &SymKey, bytes: &[u8], what: &'static str) -> Result<Vec<u8>, VauError> {
    if bytes.len() < OVERHEAD {
        return Err(VauError::TooShort(bytes.len()));
    }
    open(key, &bytes[HEADER_LEN..], &bytes[..HEADER_LEN], what)
}

fn iv(rng: &mut impl CryptoRng, counter: u64) -> [u8; IV_LEN] {
    let mut iv = [0u8; IV_LEN];
    rng.fill_bytes(&mut iv[..4]);
    iv[4..].copy_from_slice(&counter.to_be_bytes());
    iv
}

fn check_common(
    h: &Header,
    env: Environment,
    dir: Direction,
    key_id: &[u8; 32],
) -> Result<(), VauError> {
    if h.pu != env.pu_flag() {
        return Err(VauError::PuMismatch {
            expected: env.pu_flag(),
            got: h.pu,
        });
    }
    if h.direction != dir {
        return Err(VauError::Direction(h.direction as u8));
    }
    if &h.key_id != key_id {
        return Err(VauError::UnknownKeyId);
    }
    Ok(())
}

/// What a data response turned out to be.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseKind {
    Encrypted,
    Control(ControlMessage),
}

/// A data response is a CBOR control message (Restart, Error) instead of an encrypted body when
/// its content type says so, or when it does not start with the version byte and decodes as one.
pub fn classify_response(
    content_type: Option<&str>,
    body: &[u8],
) -> Result<ResponseKind, VauError> {
    let cbor = content_type.is_some_and(|c| {
        c.trim()
            .to_ascii_lowercase()
            .starts_with("application/cbor")
    });
    if cbor || body.first() != Some(&VERSION) {
        if let Ok(c) = decode_control(body) {
            return Ok(ResponseKind::Control(c));
        }
        if cbor {
            return Err(VauError::Cbor("undecodable control message".into()));
        }
    }
    Ok(ResponseKind::Encrypted)
}

/// What both ends of a channel hold: the app-data keys, the KeyID and the environment.
struct AppKeys {
    requests: SymKey,
    responses: SymKey,
    key_id: [u8; 32],
    env: Environment,
}

impl AppKeys {
    fn new(k2: K2, env: Environment) -> Self {
        Self {
            requests: k2.c2s_app_data,
            responses: k2.s2c_app_data,
            key_id: k2.key_id,
            env,
        }
    }
}

/// The client's side of an open channel.
pub struct ClientChannel {
    keys: AppKeys,
    counter: u64,
}

impl ClientChannel {
    pub(crate) fn new(k2: K2, env: Environment) -> Self {
        Self {
            keys: AppKeys::new(k2, env),
            counter: 0,
        }
    }

    pub fn key_id(&self) -> &[u8; 32] {
        &self.keys.key_id
    }

    pub fn environment(&self) -> Environment {
        self.keys.env
    }

    /// The counter of the last request sent (0 before the first).
    pub fn counter(&self) -> u64 {
        self.counter
    }

    /// Encrypts the next inner request; the counter goes up first, so the first request is 1.
    pub fn seal_request(
        &mut self,
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Result<Vec<u8>, VauError> {
        let mut buf = Vec::with_capacity(OVERHEAD + plaintext.len());
        buf.resize(HEADROOM, 0);
        buf.extend_from_slice(plaintext);
        self.seal_request_in_place(&mut buf, rng)?;
        Ok(buf)
    }

    /// [`ClientChannel::seal_request`] in place: `buf` starts with [`HEADROOM`] bytes of room
    /// (see `http::Request::to_bytes_after`) followed by the inner request, which is encrypted
    /// where it is; `buf` is then the message to send.
    pub fn seal_request_in_place(
        &mut self,
        buf: &mut Vec<u8>,
        rng: &mut impl CryptoRng,
    ) -> Result<(), VauError> {
        self.counter = self
            .counter
            .checked_add(1)
            .ok_or(VauError::CounterExhausted)?;
        let header = Header {
            pu: self.keys.env.pu_flag(),
            direction: Direction::Request,
            counter: self.counter,
            key_id: self.keys.key_id,
        }
        .encode();
        seal_in_place(
            &self.keys.requests,
            buf,
            &header,
            iv(rng, self.counter),
            &header,
        )
    }

    /// Opens the response to the last request. A Restart or Error control message becomes the
    /// matching error.
    pub fn open_response(
        &mut self,
        content_type: Option<&str>,
        body: &[u8],
    ) -> Result<Vec<u8>, VauError> {
        let mut buf = body.to_vec();
        let plain = self.open_response_in_place(content_type, &mut buf)?;
        buf.truncate(plain.end);
        buf.drain(..plain.start);
        Ok(buf)
    }

    /// [`ClientChannel::open_response`] without copying: decrypts `body` where it is and
    /// returns the range of the plaintext in it (large documents arrive this way).
    pub fn open_response_in_place(
        &mut self,
        content_type: Option<&str>,
        body: &mut [u8],
    ) -> Result<Range<usize>, VauError> {
        match classify_response(content_type, body)? {
            ResponseKind::Control(ControlMessage::Restart { .. }) => return Err(VauError::Restart),
            ResponseKind::Control(ControlMessage::Error { code, message }) => {
                return Err(VauError::Server { code, message });
            }
            ResponseKind::Encrypted => {}
        }
        let h = Header::decode(body)?;
        check_common(&h, self.keys.env, Direction::Response, &self.keys.key_id)?;
        if h.counter != self.counter {
            return Err(VauError::CounterMismatch {
                expected: self.counter,
                got: h.counter,
            });
        }
        let mut aad = [0u8; HEADER_LEN];
        aad.copy_from_slice(
            body.get(..HEADER_LEN)
                .ok_or(VauError::TooShort(body.len()))?,
        );
        open_in_place(&self.keys.responses, body, HEADER_LEN, &aad, "response")
    }

    /// `VAU-nonPU-Tracing`: the app-data keys for gematik's test tooling. Never in production.
    pub fn nonpu_tracing(&self) -> Option<String> {
        (self.keys.env == Environment::Test).then(|| {
            format!(
                "{} {}",
                base64(self.keys.requests.as_bytes()),
                base64(self.keys.responses.as_bytes())
            )
        })
    }
}

/// The server's side of an open channel.
pub struct ServerChannel {
    keys: AppKeys,
    highest: u64,
    iv_counter: u64,
}

impl ServerChannel {
    pub(crate) fn new(k2: K2, env: Environment) -> Self {
        Self {
            keys: AppKeys::new(k2, env),
            highest: 0,
            iv_counter: 0,
        }
    }

    pub fn key_id(&self) -> &[u8; 32] {
        &self.keys.key_id
    }

    /// Opens a request; returns its counter (to answer with) and the inner request. A counter not
    /// above the highest seen is a replay, checked after authentication so it cannot be forged.
    pub fn open_request(&mut self, body: &[u8]) -> Result<(u64, Vec<u8>), VauError> {
        let h = Header::decode(body)?;
        check_common(&h, self.keys.env, Direction::Request, &self.keys.key_id)?;
        let plain = open_message(&self.keys.requests, body, "request")?;
        if h.counter <= self.highest {
            return Err(VauError::Replay {
                got: h.counter,
                highest: self.highest,
            });
        }
        self.highest = h.counter;
        Ok((h.counter, plain))
    }

    pub fn seal_response(
        &mut self,
        request_counter: u64,
        plaintext: &[u8],
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        self.seal_response_parts(request_counter, &[plaintext], rng)
    }

    /// [`ServerChannel::seal_response`] with the plaintext in pieces (head and body).
    pub fn seal_response_parts(
        &mut self,
        request_counter: u64,
        plaintext: &[&[u8]],
        rng: &mut impl CryptoRng,
    ) -> Vec<u8> {
        self.iv_counter = self.iv_counter.wrapping_add(1);
        let header = Header {
            pu: self.keys.env.pu_flag(),
            direction: Direction::Response,
            counter: request_counter,
            key_id: self.keys.key_id,
        };
        seal_message_parts(
            &self.keys.responses,
            &header,
            iv(rng, self.iv_counter),
            plaintext,
        )
    }
}

/// Standard base64 with padding (RFC 4648 §4).
fn base64(bytes: &[u8]) -> String {
    const A: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(A[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_matches_rfc4648_vectors() {
        for (input, out) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(input.as_bytes()), out);
        }
    }

    #[test]
    fn header_round_trips_and_rejects_bad_bytes() {
        let h = Header {
            pu: 0,
            direction: Direction::Response,
            counter: 0x0102_0304_0506_0708,
            key_id: [9; 32],
        };
        let mut body = h.encode().to_vec();
        body.extend_from_slice(&[0; IV_LEN + TAG_LEN]);
        assert_eq!(Header::decode(&body).ok(), Some(h));
        let mut v = body.clone();
        v[0] = 3;
        assert!(matches!(Header::decode(&v), Err(VauError::Version(3))));
        v = body.clone();
        v[2] = 7;
        assert!(matches!(Header::decode(&v), Err(VauError::Direction(7))));
        assert!(matches!(
            Header::decode(&body[..70]),
            Err(VauError::TooShort(70))
        ));
    }

    #[test]
    fn control_messages_are_recognised() {
        let restart = super::super::messages::encode_restart(&[1; 32]);
        assert_eq!(
            classify_response(Some("application/cbor"), &restart).ok(),
            Some(ResponseKind::Control(ControlMessage::Restart {
                key_id: [1; 32]
            }))
        );
        // Without a content type, by shape.
        let err = super::super::messages::encode_error(403, "GCM");
        assert!(matches!(
            classify_response(None, &err),
            Ok(ResponseKind::Control(ControlMessage::Error {
                code: 403,
                ..
            }))
        ));
        let mut data = vec![VERSION];
        data.extend_from_slice(&[0; 80]);
        assert_eq!(
            classify_response(Some("application/octet-stream"), &data).ok(),
            Some(ResponseKind::Encrypted)
        );
    }
}
