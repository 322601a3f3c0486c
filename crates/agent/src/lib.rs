//! berth-agent.
