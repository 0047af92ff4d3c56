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
        let ip = client_key(ip);
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

/// The key one client's sessions are counted under: the IPv4 address, or
/// the IPv6 /64 (a host owns its whole /64 and could otherwise open a
/// session per address until the global limit refuses everyone; the rate
/// counters aggregate the same way).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 @ IpAddr::V4(_) => v4,
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

    #[test]
    fn an_ipv6_slash_64_is_one_client() {
        let a = Admission::new(10, 2);
        let x: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let y: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _t1 = a.admit(x).unwrap();
        let t2 = a.admit(y).unwrap();
        assert_eq!(t2.sessions_from_ip(), 2);
        assert_eq!(a.admit(x).err(), Some(Refusal::PerIp));
        assert!(a.admit(other).is_ok());
        // An IPv4-mapped address is the IPv4 client.
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let _m1 = a.admit(v4).unwrap();
        let _m2 = a.admit(mapped).unwrap();
        assert_eq!(a.admit(v4).err(), Some(Refusal::PerIp));
    }
}
