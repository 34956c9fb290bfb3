//! The device registry per KVNR (I_Device_Management_Insurant). This part holds the devices
//! and answers the Authorization Service's device check at login; the Device Management
//! operations (register, confirm, list, rename, delete) build on it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use crate::services::RecordServices;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceStatus {
    Pending,
    Confirmed,
}

#[derive(Debug, Clone)]
pub struct Device {
    pub identifier: String,
    /// 64 hex digits; compared in constant time.
    pub token: String,
    pub status: DeviceStatus,
    pub display_name: String,
    pub last_use: u64,
}

/// Why a login's device headers were refused (sendAuthCodeFdV's table).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeviceCheck {
    /// 404 noResource: no such device for this KVNR.
    Unknown,
    /// 403 invalidToken.
    WrongToken,
    /// 409 statusMismatch: confirm the registration first.
    Pending,
}

#[derive(Debug, Default)]
pub struct DeviceRegistry {
    by_kvnr: Mutex<HashMap<String, Vec<Device>>>,
}

fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

impl DeviceRegistry {
    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<String, Vec<Device>>> {
        self.by_kvnr.lock().unwrap_or_else(|p| p.into_inner())
    }

    pub fn insert(&self, kvnr: &str, device: Device) {
        self.map().entry(kvnr.to_owned()).or_default().push(device);
    }

    pub fn devices(&self, kvnr: &str) -> Vec<Device> {
        self.map().get(kvnr).cloned().unwrap_or_default()
    }

    /// The check at login: only this KVNR's registrations count; success updates `lastUse`.
    pub fn verify(
        &self,
        kvnr: &str,
        identifier: &str,
        token: &str,
        now: u64,
    ) -> Result<(), DeviceCheck> {
        let mut map = self.map();
        let device = map
            .get_mut(kvnr)
            .and_then(|ds| {
                ds.iter_mut()
                    .find(|d| d.identifier.eq_ignore_ascii_case(identifier))
            })
            .ok_or(DeviceCheck::Unknown)?;
        if !ct_eq(
            device.token.to_ascii_lowercase().as_bytes(),
            token.to_ascii_lowercase().as_bytes(),
        ) {
            return Err(DeviceCheck::WrongToken);
        }
        if device.status == DeviceStatus::Pending {
            return Err(DeviceCheck::Pending);
        }
        device.last_use = now;
        Ok(())
    }
}

pub fn router(_svc: Arc<RecordServices>) -> axum::Router {
    axum::Router::new()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_login_check_follows_the_table() {
        let r = DeviceRegistry::default();
        let dev = |id: &str, status| Device {
            identifier: id.into(),
            token: "ab".repeat(32),
            status,
            display_name: "newDevice001".into(),
            last_use: 0,
        };
        r.insert(
            "X110411675",
            dev(
                "11111111-1111-4111-8111-111111111111",
                DeviceStatus::Confirmed,
            ),
        );
        r.insert(
            "X110411675",
            dev(
                "22222222-2222-4222-8222-222222222222",
                DeviceStatus::Pending,
            ),
        );
        let t = "ab".repeat(32);
        assert_eq!(
            r.verify("X110411675", "11111111-1111-4111-8111-111111111111", &t, 5),
            Ok(())
        );
        assert_eq!(r.devices("X110411675")[0].last_use, 5);
        assert_eq!(
            r.verify(
                "X110411675",
                "11111111-1111-4111-8111-111111111111",
                &"cd".repeat(32),
                6
            ),
            Err(DeviceCheck::WrongToken)
        );
        assert_eq!(
            r.verify("X110411675", "22222222-2222-4222-8222-222222222222", &t, 7),
            Err(DeviceCheck::Pending)
        );
        // Another insurant's device does not exist for this KVNR.
        assert_eq!(
            r.verify("M432109873", "11111111-1111-4111-8111-111111111111", &t, 8),
            Err(DeviceCheck::Unknown)
        );
    }
}
