//! The control plane: cluster state (kept in memory, written through to the embedded store before
//! any change is acknowledged), the ECS operations, and the controllers that turn desired state into
//! work for the node agents and routing for the proxy. No HTTP here: `berth-server` is the edge.

pub mod ecs;
pub mod error;
mod events;
pub mod lb;
pub mod logs;
pub mod logs_api;
mod nodes;
mod reconcile;
pub mod secrets_hook;
mod shift;
pub mod state;
pub mod telemetry;
pub mod traffic;

pub use error::ApiError;
pub use state::{ControlConfig, ControlPlane};
