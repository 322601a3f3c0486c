//! berth-store.
