//! Admission: what a transport lets in, and how much of it at once.
//!
//! Every transport (pipe, gRPC, D-Bus, Kerberos over TCP) counts its clients here.

use std::sync::Arc;

/// The calls each uid has in flight at a transport's service (gRPC, D-Bus): one
/// count per uid, shared by the service and the calls it let through.
#[derive(Clone, Debug, Default)]
pub(crate) struct CallsInFlight(Arc<std::sync::Mutex<std::collections::HashMap<u32, usize>>>);

impl CallsInFlight {
    /// Counts a new call of `uid` if it has fewer than `max` in flight; else
    /// returns how many it has.
    pub(crate) fn admit(&self, uid: u32, max: usize) -> std::result::Result<InFlightCall, usize> {
        let mut counts = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = counts.entry(uid).or_default();
        if *n >= max {
            return Err(*n);
        }
        *n += 1;
        Ok(InFlightCall {
            calls: self.clone(),
            uid,
        })
    }
}

/// One call in flight of a uid: its place is given back when this is dropped.
#[derive(Debug)]
pub(crate) struct InFlightCall {
    calls: CallsInFlight,
    uid: u32,
}

impl Drop for InFlightCall {
    fn drop(&mut self) {
        let mut counts = self.calls.0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = counts.get_mut(&self.uid) {
            *n -= 1;
            if *n == 0 {
                counts.remove(&self.uid);
            }
        }
    }
}
