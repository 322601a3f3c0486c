//! Errors of the Secrets Manager operations, in AWS's vocabulary. Messages never carry a value.

/// An error of a Secrets Manager operation or of the store beneath it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SecretsError {
    #[error("Secrets Manager can't find the specified secret{0}")]
    NotFound(String),
    #[error("{0}")]
    Exists(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("{0}")]
    InvalidParameter(String),
    #[error("The operation {0} is not supported by berth's Secrets Manager")]
    UnknownOperation(String),
    #[error("cannot decrypt {0}: the master key does not match the one that encrypted it")]
    Decrypt(String),
    #[error("the secret store failed: {0}")]
    Internal(String),
}

impl SecretsError {
    /// AWS's error code (`__type`).
    pub fn code(&self) -> &'static str {
        match self {
            SecretsError::NotFound(_) => "ResourceNotFoundException",
            SecretsError::Exists(_) => "ResourceExistsException",
            SecretsError::InvalidRequest(_) => "InvalidRequestException",
            SecretsError::InvalidParameter(_) => "InvalidParameterException",
            SecretsError::UnknownOperation(_) => "UnknownOperationException",
            SecretsError::Decrypt(_) => "DecryptionFailure",
            SecretsError::Internal(_) => "InternalServiceError",
        }
    }

    /// The HTTP status of the error response.
    pub fn status(&self) -> u16 {
        match self {
            SecretsError::Decrypt(_) | SecretsError::Internal(_) => 500,
            _ => 400,
        }
    }

    pub(crate) fn io(what: &str, e: std::io::Error) -> Self {
        SecretsError::Internal(format!("{what}: {e}"))
    }

    pub(crate) fn not_found() -> Self {
        SecretsError::NotFound(".".into())
    }

    pub(crate) fn deleted() -> Self {
        SecretsError::InvalidRequest(
            "You can't perform this operation on the secret because it was marked for deletion."
                .into(),
        )
    }
}
