//! The built-in HTTP demo workload (`berth demo-app`): answers with its name, version and task,
//! with knobs for latency, CPU burn (per request, or in the background with `/busy`) and injected
//! errors, and drains in-flight requests on SIGTERM.

mod options;
mod server;

pub use options::DemoOptions;
pub use server::{run, run_until_signal, serve};

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests;
