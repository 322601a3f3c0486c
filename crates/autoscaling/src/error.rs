//! Errors of the Application Auto Scaling operations, in AWS's vocabulary (`__type` + message).

/// Why an Application Auto Scaling operation was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AutoScalingError {
    /// The input failed validation; every problem is listed as `Field: expected, found`.
    #[error("{}", .0.join("; "))]
    Validation(Vec<String>),
    /// The named scalable target, policy or scheduled action does not exist.
    #[error("{0}")]
    ObjectNotFound(String),
    /// Another change to the same resource is in progress.
    #[error("{0}")]
    ConcurrentUpdate(String),
    /// A resource the operation needs (the ECS service, the CloudWatch alarms) could not be used.
    #[error("{0}")]
    FailedResourceAccess(String),
    /// A quota (policies or scheduled actions per target) would be exceeded.
    #[error("{0}")]
    LimitExceeded(String),
    /// The operation is not one berth serves.
    #[error("berth does not implement the Application Auto Scaling operation {0}")]
    UnknownOperation(String),
    /// The state could not be saved.
    #[error("{0}")]
    Internal(String),
}

impl AutoScalingError {
    /// A validation error with one problem.
    pub fn invalid(message: impl Into<String>) -> AutoScalingError {
        AutoScalingError::Validation(vec![message.into()])
    }

    /// AWS's error code (`__type`).
    pub fn code(&self) -> &'static str {
        match self {
            AutoScalingError::Validation(_) => "ValidationException",
            AutoScalingError::ObjectNotFound(_) => "ObjectNotFoundException",
            AutoScalingError::ConcurrentUpdate(_) => "ConcurrentUpdateException",
            AutoScalingError::FailedResourceAccess(_) => "FailedResourceAccessException",
            AutoScalingError::LimitExceeded(_) => "LimitExceededException",
            AutoScalingError::UnknownOperation(_) => "UnknownOperationException",
            AutoScalingError::Internal(_) => "InternalServiceException",
        }
    }

    /// The HTTP status of the error response.
    pub fn status(&self) -> u16 {
        match self {
            AutoScalingError::Internal(_) => 500,
            _ => 400,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_statuses_are_aws_ones() {
        let cases = [
            (AutoScalingError::invalid("x"), "ValidationException", 400),
            (
                AutoScalingError::ObjectNotFound("x".into()),
                "ObjectNotFoundException",
                400,
            ),
            (
                AutoScalingError::ConcurrentUpdate("x".into()),
                "ConcurrentUpdateException",
                400,
            ),
            (
                AutoScalingError::FailedResourceAccess("x".into()),
                "FailedResourceAccessException",
                400,
            ),
            (
                AutoScalingError::LimitExceeded("x".into()),
                "LimitExceededException",
                400,
            ),
            (
                AutoScalingError::Internal("x".into()),
                "InternalServiceException",
                500,
            ),
        ];
        for (e, code, status) in cases {
            assert_eq!((e.code(), e.status()), (code, status), "{e:?}");
        }
        assert_eq!(
            AutoScalingError::Validation(vec!["a: b".into(), "c: d".into()]).to_string(),
            "a: b; c: d"
        );
    }
}
