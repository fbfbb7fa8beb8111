//! Port checks for the local stack and the test harness.

use std::net::{Ipv4Addr, TcpListener};

/// True when nothing listens on 127.0.0.1:`port` (and 0.0.0.0:`port`).
pub fn is_free(port: u16) -> bool {
    TcpListener::bind((Ipv4Addr::LOCALHOST, port)).is_ok()
        && TcpListener::bind((Ipv4Addr::UNSPECIFIED, port)).is_ok()
}

/// Ports handed out by [`free_port`]: below Linux's ephemeral range
/// (32768–60999), so that outgoing client connections, which take their
/// local port from that range, never hold the port a server is about to use.
const SERVER_PORTS: std::ops::Range<u16> = 20_000..32_000;

/// A port that was free a moment ago. Callers must tolerate losing a race
/// for it to another server (start, and on "address in use" pick again).
pub fn free_port() -> u16 {
    use rand::Rng;
    let mut rng = rand::thread_rng();
    loop {
        let port = rng.gen_range(SERVER_PORTS);
        if is_free(port) {
            return port;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bound_port_is_not_free() {
        // A server port, not an ephemeral one: once released, an ephemeral port
        // can be taken at once by any outgoing connection on the machine.
        let port = free_port();
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, port)).unwrap();
        assert!(!is_free(port));
        drop(listener);
        assert!(is_free(port));
    }
}
