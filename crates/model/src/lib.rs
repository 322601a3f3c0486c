//! berth's data model: ECS, ELBv2 and friends as plain types, ARNs and validation. No IO.

pub mod arn;
pub mod ecs;
pub mod linux;
pub mod protocol;
pub mod seconds;
pub mod validate;

pub use arn::Arns;
pub use validate::{FieldError, FieldErrors};

/// Seconds since the Unix epoch as AWS's JSON protocols send timestamps.
pub type Timestamp = f64;

/// Current wall-clock time as an AWS timestamp.
pub fn now() -> Timestamp {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}
