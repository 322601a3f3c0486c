//! The errors of ELBv2 operations, each carrying the AWS error code the wire protocol returns.

use berth_model::FieldErrors;

/// Why an ELBv2 operation was refused; `code()` is the AWS error code.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ElbError {
    /// Malformed input; every invalid field is listed.
    #[error("{0}")]
    Validation(FieldErrors),
    #[error("A load balancer with the name '{0}' already exists")]
    DuplicateLoadBalancerName(String),
    #[error("A target group with the name '{0}' already exists")]
    DuplicateTargetGroupName(String),
    #[error("{0}")]
    DuplicateListener(String),
    #[error("Priority '{0}' is currently in use")]
    PriorityInUse(u32),
    #[error("Load balancer '{0}' not found")]
    LoadBalancerNotFound(String),
    #[error("Target group '{0}' not found")]
    TargetGroupNotFound(String),
    #[error("Listener '{0}' not found")]
    ListenerNotFound(String),
    #[error("Rule '{0}' not found")]
    RuleNotFound(String),
    #[error("{0}")]
    ResourceInUse(String),
    #[error("{0}")]
    InvalidConfigurationRequest(String),
    #[error("{0}")]
    OperationNotPermitted(String),
    #[error("{0}")]
    TargetGroupAssociationLimit(String),
    #[error("{0}")]
    TooManyTargets(String),
    #[error("{0}")]
    InvalidTarget(String),
    #[error("{0}")]
    DuplicateTagKeys(String),
    #[error("{0}")]
    TooManyTags(String),
}

impl ElbError {
    /// The AWS error code (`<Code>` in the query protocol's error document).
    pub fn code(&self) -> &'static str {
        match self {
            ElbError::Validation(_) => "ValidationError",
            ElbError::DuplicateLoadBalancerName(_) => "DuplicateLoadBalancerName",
            ElbError::DuplicateTargetGroupName(_) => "DuplicateTargetGroupName",
            ElbError::DuplicateListener(_) => "DuplicateListener",
            ElbError::PriorityInUse(_) => "PriorityInUse",
            ElbError::LoadBalancerNotFound(_) => "LoadBalancerNotFound",
            ElbError::TargetGroupNotFound(_) => "TargetGroupNotFound",
            ElbError::ListenerNotFound(_) => "ListenerNotFound",
            ElbError::RuleNotFound(_) => "RuleNotFound",
            ElbError::ResourceInUse(_) => "ResourceInUse",
            ElbError::InvalidConfigurationRequest(_) => "InvalidConfigurationRequest",
            ElbError::OperationNotPermitted(_) => "OperationNotPermitted",
            ElbError::TargetGroupAssociationLimit(_) => "TargetGroupAssociationLimit",
            ElbError::TooManyTargets(_) => "TooManyTargets",
            ElbError::InvalidTarget(_) => "InvalidTarget",
            ElbError::DuplicateTagKeys(_) => "DuplicateTagKeys",
            ElbError::TooManyTags(_) => "TooManyTags",
        }
    }

    /// A single-field validation error.
    pub fn field(path: impl Into<String>, message: impl Into<String>) -> ElbError {
        let mut errors = FieldErrors::default();
        errors.push(path, message);
        ElbError::Validation(errors)
    }
}

/// `Ok(())` when no field errors were collected, `ElbError::Validation` otherwise.
pub(crate) fn check(errors: FieldErrors) -> Result<(), ElbError> {
    errors.into_result().map_err(ElbError::Validation)
}
