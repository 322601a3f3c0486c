//! Errors of the control plane's operations, in the AWS error vocabulary (`__type` + message).

/// An error an API operation returns: AWS's error code and a message naming the field or resource.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct ApiError {
    /// e.g. `ClientException`, `ClusterNotFoundException`.
    pub code: &'static str,
    pub message: String,
    /// HTTP status (400 for client errors, 500 for server errors).
    pub status: u16,
}

impl ApiError {
    pub fn client(message: impl Into<String>) -> Self {
        ApiError {
            code: "ClientException",
            message: message.into(),
            status: 400,
        }
    }
    pub fn invalid(message: impl Into<String>) -> Self {
        ApiError {
            code: "InvalidParameterException",
            message: message.into(),
            status: 400,
        }
    }
    pub fn cluster_not_found(name: &str) -> Self {
        ApiError {
            code: "ClusterNotFoundException",
            message: format!("Cluster not found: {name}"),
            status: 400,
        }
    }
    pub fn service_not_found(name: &str) -> Self {
        ApiError {
            code: "ServiceNotFoundException",
            message: format!("Service not found: {name}"),
            status: 400,
        }
    }
    pub fn service_not_active(name: &str) -> Self {
        ApiError {
            code: "ServiceNotActiveException",
            message: format!("Service is not ACTIVE: {name}"),
            status: 400,
        }
    }
    pub fn server(message: impl Into<String>) -> Self {
        ApiError {
            code: "ServerException",
            message: message.into(),
            status: 500,
        }
    }
    pub fn unknown_operation(op: &str) -> Self {
        ApiError {
            code: "UnknownOperationException",
            message: format!("berth does not implement the operation {op}"),
            status: 400,
        }
    }
}

impl From<berth_store::StoreError> for ApiError {
    fn from(e: berth_store::StoreError) -> Self {
        ApiError::server(e.to_string())
    }
}
