//! berth-scheduler.
