//! The journey's secrets in dedicated types: no Debug, no Clone, wiped on drop. The device
//! credential is the only one that is ever stored (in the encrypted vault).

use epa_protocol::rest::{DeviceCredential, DeviceToken};
use serde::{Deserialize, Serialize};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

use super::util::constant_time_eq;

/// The OAuth `state` of a pending login: whoever knows it can complete the login with a code.
pub struct LoginState(Zeroizing<String>);

impl LoginState {
    pub fn new(state: String) -> Self {
        Self(Zeroizing::new(state))
    }

    /// Constant-time comparison with the callback's `state`.
    pub fn matches(&self, other: &str) -> bool {
        constant_time_eq(self.0.as_bytes(), other.as_bytes())
    }
}

/// This PC's registration at one Aktensystem for one KVNR (vault record
/// `epa/device/<kvnr>/<aktensystem>`). Pending until `confirmPendingDevice` succeeded.
#[derive(Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct StoredDevice {
    pub identifier: String,
    /// deviceToken: 64 hex digits, the long-term device secret.
    pub token: String,
    pub name: String,
    pub created_unix: u64,
    pub confirmed: bool,
    /// Code attempts left as far as this client knows (pending only).
    pub tries_left: u32,
}

impl StoredDevice {
    /// The pair for the device headers / confirmPendingDevice; `None` for a damaged token.
    pub fn credential(&self) -> Option<DeviceCredential> {
        Some(DeviceCredential {
            identifier: self.identifier.clone(),
            token: DeviceToken::new(self.token.clone())?,
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn states_compare_exactly() {
        let s = super::LoginState::new("abc".into());
        assert!(s.matches("abc"));
        assert!(!s.matches("abd"));
        assert!(!s.matches(""));
    }
}
