//! Connection admission: the global and per-IP concurrent-session limits.
//!
//! # Security
//! A resource-exhaustion defence (RFC 5321 §4.5.3.1 lets a server refuse with
//! `421` when it is overloaded). Counts live sessions only; rates belong to a
//! later rate limiter.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Why a connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// `max_connections` sessions are already open.
    Global,
    /// `max_connections_per_ip` sessions from this address are already open.
    PerIp,
}

/// Shared counters for all listeners.
pub(crate) struct Admission {
    global: Arc<Semaphore>,
    per_ip: Mutex<HashMap<IpAddr, usize>>,
    max_per_ip: usize,
}

/// Held by a session for its lifetime; releases both counters on drop.
pub(crate) struct Ticket {
    _global: OwnedSemaphorePermit,
    admission: Arc<Admission>,
    ip: IpAddr,
}

impl Admission {
    pub(crate) fn new(max_connections: usize, max_per_ip: usize) -> Arc<Self> {
        Arc::new(Self {
            global: Arc::new(Semaphore::new(max_connections)),
            per_ip: Mutex::new(HashMap::new()),
            max_per_ip,
        })
    }

    /// Admits one session from `ip` or says why not.
    pub(crate) fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Ticket, Refusal> {
        let global = Arc::clone(&self.global)
            .try_acquire_owned()
            .map_err(|_| Refusal::Global)?;
        let mut map = self
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let n = map.entry(ip).or_insert(0);
        if *n >= self.max_per_ip {
            return Err(Refusal::PerIp);
        }
        *n += 1;
        Ok(Ticket {
            _global: global,
            admission: Arc::clone(self),
            ip,
        })
    }
}

impl Ticket {
    /// Sessions open from this ticket's address, its own included.
    pub(crate) fn sessions_from_ip(&self) -> usize {
        self.admission
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&self.ip)
            .copied()
            .unwrap_or(1)
    }
}

impl Drop for Ticket {
    fn drop(&mut self) {
        let mut map = self
            .admission
            .per_ip
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(n) = map.get_mut(&self.ip) {
            *n -= 1;
            if *n == 0 {
                map.remove(&self.ip);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn per_ip_and_global_limits_release_on_drop() {
        let a = Admission::new(3, 2);
        let ip1: IpAddr = "192.0.2.1".parse().unwrap();
        let ip2: IpAddr = "192.0.2.2".parse().unwrap();
        let t1 = a.admit(ip1).unwrap();
        let _t2 = a.admit(ip1).unwrap();
        assert_eq!(a.admit(ip1).err(), Some(Refusal::PerIp));
        let _t3 = a.admit(ip2).unwrap();
        assert_eq!(a.admit(ip2).err(), Some(Refusal::Global));
        drop(t1);
        assert!(a.admit(ip1).is_ok());
    }
}
