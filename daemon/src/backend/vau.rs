//! One VAU channel to one Aktensystem over HTTPS (epa-protocol.md §2): handshake with a strict
//! check of the server's signed keys, then inner HTTP requests one at a time, `VAU-NP` after
//! login. A Restart or an unknown channel drops the channel; the caller decides about re-login.

use std::time::{SystemTime, UNIX_EPOCH};

use epa_protocol::http::{Limits, Request, Response, parse_response_in};
use epa_protocol::pki::{CertData, CertVerification};
use epa_protocol::vau::{ClientChannel, ClientHandshake, Environment, VauError, channel};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;
use tokio::sync::Mutex;
use zeroize::Zeroizing;

use super::BackendError;

/// Where and how to reach one Aktensystem's VAU.
#[derive(Debug, Clone)]
pub struct VauTarget {
    /// `https://host:port`, no trailing slash.
    pub base_url: String,
    /// DER roots the VAU signing certificate must chain to.
    pub trusted_roots: Vec<Vec<u8>>,
    /// PU flag the channel must carry (Test = 0 for every non-production environment).
    pub environment: Environment,
    /// `x-useragent`: ClientId/Version (epa-protocol::useragent).
    pub user_agent: String,
}

struct Open {
    channel: ClientChannel,
    url: String,
    rng: ChaCha20Rng,
    /// The user pseudonym: identifies the user session at the load balancer, so wiped on drop.
    vau_np: Option<Zeroizing<String>>,
}

pub struct VauClient {
    http: reqwest::Client,
    target: VauTarget,
    host: String,
    /// The open channel; the lock also serialises requests (one in flight per channel).
    open: Mutex<Option<Open>>,
}

fn now_unix() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn fresh_rng() -> Result<ChaCha20Rng, BackendError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| BackendError::Random(e.to_string()))?;
    Ok(ChaCha20Rng::from_seed(seed))
}

/// `VAU-CID` is a server-chosen absolute path: `^/[A-Za-z0-9/-]*$`, at most 200 characters.
fn cid_ok(cid: &str) -> bool {
    cid.starts_with('/')
        && cid.len() <= 200
        && cid
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'/' || b == b'-')
}

impl VauClient {
    pub fn new(http: reqwest::Client, target: VauTarget) -> Self {
        let host = target
            .base_url
            .split_once("://")
            .map_or(target.base_url.as_str(), |(_, rest)| rest)
            .split('/')
            .next()
            .unwrap_or_default()
            .to_owned();
        Self {
            http,
            target,
            host,
            open: Mutex::new(None),
        }
    }

    fn unreachable(&self, e: reqwest::Error) -> BackendError {
        BackendError::Unreachable {
            url: self.target.base_url.clone(),
            // Only the base URL: request paths may carry identifiers.
            reason: e.without_url().to_string(),
        }
    }

    async fn post(
        &self,
        path: &str,
        content_type: &str,
        body: Vec<u8>,
        vau_np: Option<&str>,
    ) -> Result<reqwest::Response, BackendError> {
        let mut req = self
            .http
            .post(format!("{}{path}", self.target.base_url))
            .header("x-useragent", &self.target.user_agent)
            .header("content-type", content_type)
            .body(body);
        if let Some(np) = vau_np {
            req = req.header("VAU-NP", np);
        }
        req.send().await.map_err(|e| self.unreachable(e))
    }

    /// Turns a non-200 outer answer into an error with the server's CBOR/JSON error text.
    async fn outer_error(resp: reqwest::Response) -> BackendError {
        let status = resp.status().as_u16();
        let body = resp.bytes().await.unwrap_or_default();
        let detail = match epa_protocol::vau::messages::decode_control(&body) {
            Ok(c) => format!("{c:?}"),
            Err(_) => String::from_utf8_lossy(&body[..body.len().min(200)]).into_owned(),
        };
        BackendError::Outer { status, detail }
    }

    async fn handshake(&self) -> Result<Open, BackendError> {
        let mut rng = fresh_rng()?;
        let hs = ClientHandshake::start(&mut rng);
        let r = self
            .post("/VAU", "application/cbor", hs.m1().to_vec(), None)
            .await?;
        if r.status().as_u16() != 200 {
            return Err(Self::outer_error(r).await);
        }
        let cid = r
            .headers()
            .get("vau-cid")
            .and_then(|v| v.to_str().ok())
            .filter(|c| cid_ok(c))
            .map(str::to_owned)
            .ok_or(BackendError::Vau(VauError::BadField {
                field: "VAU-CID",
                problem: "missing or not a path of [A-Za-z0-9/-], ≤ 200 chars".into(),
            }))?;
        let m2 = r.bytes().await.map_err(|e| self.unreachable(e))?;
        let awaiting = hs.receive_m2(&m2)?;
        let cert = self
            .http
            .get(format!(
                "{}{}",
                self.target.base_url,
                awaiting.cert_data_path()
            ))
            .header("x-useragent", &self.target.user_agent)
            .send()
            .await
            .map_err(|e| self.unreachable(e))?;
        if cert.status().as_u16() != 200 {
            return Err(Self::outer_error(cert).await);
        }
        let cert = cert.bytes().await.map_err(|e| self.unreachable(e))?;
        let cert = CertData::from_cbor(&cert).map_err(VauError::from)?;
        let now = now_unix();
        let mode = CertVerification::Strict {
            trusted_roots: self.target.trusted_roots.clone(),
            now_unix: now,
        };
        let (awaiting, m3) = awaiting.finish(&cert, &mode, now, &mut rng)?;
        let r = self.post(&cid, "application/cbor", m3, None).await?;
        if r.status().as_u16() != 200 {
            return Err(Self::outer_error(r).await);
        }
        let m4 = r.bytes().await.map_err(|e| self.unreachable(e))?;
        let channel = awaiting.receive_m4(&m4, self.target.environment)?;
        tracing::debug!(host = %self.host, "VAU channel open");
        Ok(Open {
            channel,
            url: cid,
            rng,
            vau_np: None,
        })
    }

    /// Sends one inner request, opening a channel first when there is none. A lost channel
    /// (Restart, unknown CID, failed decryption) is forgotten and reported as
    /// [`BackendError::ChannelLost`] or the VAU error; the next call opens a new one.
    pub async fn send(&self, inner: &Request) -> Result<Response, BackendError> {
        let mut guard = self.open.lock().await;
        if guard.is_none() {
            *guard = Some(self.handshake().await?);
        }
        let Some(open) = guard.as_mut() else {
            return Err(BackendError::ChannelLost);
        };
        // The request is written after room for the VAU header and sealed where it is (an
        // upload is not copied again); should sealing fail, the plaintext is wiped.
        let mut message = Zeroizing::new(inner.to_bytes_after(&self.host, channel::HEADROOM)?);
        open.channel
            .seal_request_in_place(&mut message, &mut open.rng)?;
        let sealed = std::mem::take(&mut *message);
        let url = open.url.clone();
        let np = open.vau_np.clone();
        let r = match self
            .post(
                &url,
                "application/octet-stream",
                sealed,
                np.as_deref().map(String::as_str),
            )
            .await
        {
            Ok(r) => r,
            Err(e) => {
                // The request may or may not have reached the server: the counter is spent
                // either way, so the channel stays usable for the next request.
                return Err(e);
            }
        };
        if r.status().as_u16() != 200 {
            *guard = None;
            return Err(Self::outer_error(r).await);
        }
        let ct = r
            .headers()
            .get("content-type")
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        // Into one buffer of the announced size (bounded): the answer is then decrypted and
        // its body handed on where it lies, so a 25 MB document is not copied again.
        let limits = Limits::default();
        let max = limits
            .max_header_bytes
            .saturating_add(limits.max_body_bytes);
        let mut body = Zeroizing::new(self.read_body(r, max).await?);
        match open
            .channel
            .open_response_in_place(ct.as_deref(), &mut body)
        {
            Ok(plain) => Ok(parse_response_in(&mut body, plain, &limits)?),
            Err(VauError::Restart) => {
                tracing::info!(host = %self.host, "VAU Restart: channel dropped");
                *guard = None;
                Err(BackendError::ChannelLost)
            }
            Err(e) => {
                *guard = None;
                Err(e.into())
            }
        }
    }

    /// The outer body, at most the inner size limit plus the VAU framing.
    async fn read_body(
        &self,
        mut r: reqwest::Response,
        max_inner: usize,
    ) -> Result<Vec<u8>, BackendError> {
        let max = max_inner.saturating_add(channel::OVERHEAD);
        let too_large = || BackendError::Outer {
            status: 200,
            detail: format!("answer larger than {max} bytes"),
        };
        // Reserved as announced (documents fit in one allocation), but never more than 64 MiB
        // up front on a server's word; a larger answer grows as it really arrives.
        let announced = usize::try_from(r.content_length().unwrap_or(0)).unwrap_or(max);
        let mut buf = Vec::with_capacity(announced.min(max).min(64 << 20));
        while let Some(chunk) = r.chunk().await.map_err(|e| self.unreachable(e))? {
            if buf.len() + chunk.len() > max {
                return Err(too_large());
            }
            buf.extend_from_slice(&chunk);
        }
        Ok(buf)
    }

    /// After login: every later outer request carries `VAU-NP`.
    pub async fn set_vau_np(&self, vau_np: String) {
        if let Some(open) = self.open.lock().await.as_mut() {
            open.vau_np = Some(Zeroizing::new(vau_np));
        }
    }

    /// Forgets the channel (logout, or a user session the server dropped).
    pub async fn reset(&self) {
        *self.open.lock().await = None;
    }

    pub async fn is_open(&self) -> bool {
        self.open.lock().await.is_some()
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn cids_are_checked() {
        assert!(super::cid_ok("/VAU/epa-as-1/0af3"));
        assert!(super::cid_ok("/1725955499076"));
        assert!(!super::cid_ok("VAU/x"));
        assert!(!super::cid_ok("/VAU/../x?"));
        assert!(!super::cid_ok(&format!("/{}", "a".repeat(200))));
    }
}
