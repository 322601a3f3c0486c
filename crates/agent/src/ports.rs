//! Host port allocation for port mappings: fixed ports as given, others picked free by the kernel.

use std::collections::BTreeSet;
use std::net::TcpListener;
use std::sync::Mutex;

/// Why ports could not be allocated.
#[derive(Debug, thiserror::Error, PartialEq)]
pub enum PortError {
    #[error("host port {0} is already used by another task on this node")]
    InUse(u16),
    #[error("no free host port found: {0}")]
    Exhausted(String),
}

/// The node's host ports in use by tasks; shared by all tasks of one agent.
#[derive(Debug, Default)]
pub struct PortAllocator {
    in_use: Mutex<BTreeSet<u16>>,
}

impl PortAllocator {
    /// Allocates one host port per request (`0` = any free port); all or nothing.
    pub fn allocate(&self, requested: &[u16]) -> Result<Vec<u16>, PortError> {
        let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        let mut taken: Vec<u16> = Vec::new();
        let fixed: Vec<u16> = requested.iter().copied().filter(|p| *p != 0).collect();
        for (i, p) in fixed.iter().enumerate() {
            if in_use.contains(p) || fixed[..i].contains(p) {
                return Err(PortError::InUse(*p));
            }
        }
        for &want in requested {
            if want != 0 {
                taken.push(want);
                continue;
            }
            let mut found = None;
            for _ in 0..64 {
                let port = TcpListener::bind("127.0.0.1:0")
                    .and_then(|l| l.local_addr())
                    .map(|a| a.port())
                    .map_err(|e| PortError::Exhausted(e.to_string()))?;
                if !in_use.contains(&port) && !taken.contains(&port) && !fixed.contains(&port) {
                    found = Some(port);
                    break;
                }
            }
            match found {
                Some(p) => taken.push(p),
                None => {
                    return Err(PortError::Exhausted(
                        "64 tries gave only ports in use".into(),
                    ))
                }
            }
        }
        in_use.extend(taken.iter().copied());
        Ok(taken)
    }

    /// Marks ports as used (tasks adopted after a restart).
    pub fn reserve(&self, ports: &[u16]) {
        let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        in_use.extend(ports.iter().copied().filter(|p| *p != 0));
    }

    /// Frees ports of a stopped task.
    pub fn release(&self, ports: &[u16]) {
        let mut in_use = self.in_use.lock().unwrap_or_else(|p| p.into_inner());
        for p in ports {
            in_use.remove(p);
        }
    }

    /// Whether a port is currently allocated.
    pub fn is_used(&self, port: u16) -> bool {
        self.in_use
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .contains(&port)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamic_ports_are_distinct_free_and_not_reused() {
        let ports = PortAllocator::default();
        let a = ports.allocate(&[0, 0, 0]).unwrap();
        assert_eq!(a.len(), 3);
        assert!(a.iter().all(|p| *p != 0));
        let set: BTreeSet<_> = a.iter().collect();
        assert_eq!(set.len(), 3);
        let b = ports.allocate(&[0; 20]).unwrap();
        assert!(b.iter().all(|p| !a.contains(p)), "{a:?} {b:?}");
        // The allocated ports really are free to bind.
        for p in &a {
            TcpListener::bind(("127.0.0.1", *p)).unwrap();
        }
    }

    #[test]
    fn fixed_ports_conflict_and_release() {
        let ports = PortAllocator::default();
        assert_eq!(ports.allocate(&[18080]).unwrap(), vec![18080]);
        assert_eq!(ports.allocate(&[18080, 0]), Err(PortError::InUse(18080)));
        assert_eq!(
            ports.allocate(&[18081, 18081]),
            Err(PortError::InUse(18081))
        );
        // A failed allocation takes nothing.
        assert!(!ports.is_used(18081));
        ports.release(&[18080]);
        assert!(!ports.is_used(18080));
        assert_eq!(ports.allocate(&[18080]).unwrap(), vec![18080]);
        ports.reserve(&[18090, 0]);
        assert!(ports.is_used(18090));
        assert!(!ports.is_used(0));
    }
}
