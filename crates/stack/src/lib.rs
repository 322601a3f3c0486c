//! berth-stack.
