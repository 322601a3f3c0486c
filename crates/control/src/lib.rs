//! berth-control.
