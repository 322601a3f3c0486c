//! berth-proxy.
