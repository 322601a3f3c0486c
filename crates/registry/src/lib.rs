//! berth-registry: the OCI image registry (ECR counterpart).
//!
//! - [`router`] serves the OCI Distribution API under `/v2/`; [`ecr::call`] serves ECR's
//!   awsJson 1.1 operations; both work on one [`Registry`], stored under a root directory.
//! - [`build_image`] makes an OCI image from a rootfs (or `scratch`) plus files and pushes it;
//!   [`pull`] fetches an image into a content-addressed directory for the container driver.
//!
//! Decisions:
//! - **Repositories are created on first manifest push** (with ECR's defaults: MUTABLE tags,
//!   scanOnPush off), unlike ECR, which requires CreateRepository first. CreateRepository on a
//!   repository that a push already created answers RepositoryAlreadyExistsException, as it would
//!   for one created by CreateRepository. Blob uploads never create a repository.
//! - Blobs are stored once for the whole registry (`blobs/sha256/<hex>`) and served from any
//!   repository name; repository scoping of blobs comes with authentication.
//! - Garbage collection frees blobs that no manifest of any repository references: at once for
//!   blobs of images just deleted, after a grace period (default 1 hour) for blobs uploaded but
//!   never referenced, so a push in progress is not collected under its feet.
//! - Deleting an index also deletes the child manifests it alone referenced and that have no tag;
//!   lifecycle policies do not consider such children separately.
//! - Scan on push records a COMPLETE scan with no findings: berth has no vulnerability database.

pub mod build;
pub mod client;
pub mod digest;
pub mod ecr;
mod http;
pub mod lifecycle;
pub mod manifest;
pub mod reference;
mod registry;

pub use build::{build_image, AddFile, Base, BuildOptions, BuiltImage, ImageConfig};
pub use client::{
    pull, pull_with, push_layout, set_credential, use_https, Credential, PulledImage, PulledLayer,
};
pub use digest::Digest;
pub use http::router;
pub use registry::{spawn_lifecycle, GcReport, Registry};

/// What can go wrong in the registry: storage, protocol and client errors.
#[derive(Debug, thiserror::Error)]
pub enum RegistryError {
    #[error("repository {0:?} not found")]
    NameUnknown(String),
    #[error("{0}")]
    NameInvalid(String),
    #[error("manifest {reference} not found in repository {repository:?}")]
    ManifestUnknown {
        repository: String,
        reference: String,
    },
    #[error("blob {0} not found")]
    BlobUnknown(Digest),
    #[error("blob upload {0:?} not found")]
    BlobUploadUnknown(String),
    #[error("digest mismatch: expected {expected}, the content hashes to {actual}")]
    DigestInvalid { expected: String, actual: String },
    #[error("{0}")]
    DigestParse(#[from] digest::DigestParseError),
    #[error("manifest invalid: {0}")]
    ManifestInvalid(String),
    #[error("manifest references {0}, which is not in the registry (push it first)")]
    ManifestBlobUnknown(Digest),
    #[error("The image tag '{tag}' already exists in the '{repository}' repository and cannot be overwritten because the repository is immutable.")]
    TagImmutable { repository: String, tag: String },
    #[error("{0}")]
    TagInvalid(String),
    #[error("upload range invalid: {0}")]
    RangeInvalid(String),
    #[error("{0}")]
    Unsupported(String),
    #[error("{0}")]
    Denied(String),
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: std::io::Error,
    },
    #[error("image build: {0}")]
    Build(String),
    #[error("{0}")]
    Reference(String),
    #[error("registry request {method} {url} failed: {message}")]
    Http {
        method: String,
        url: String,
        message: String,
    },
}

impl RegistryError {
    /// The OCI distribution error code.
    pub fn oci_code(&self) -> &'static str {
        match self {
            RegistryError::NameUnknown(_) => "NAME_UNKNOWN",
            RegistryError::NameInvalid(_) | RegistryError::Reference(_) => "NAME_INVALID",
            RegistryError::ManifestUnknown { .. } => "MANIFEST_UNKNOWN",
            RegistryError::BlobUnknown(_) => "BLOB_UNKNOWN",
            RegistryError::BlobUploadUnknown(_) => "BLOB_UPLOAD_UNKNOWN",
            RegistryError::DigestInvalid { .. } | RegistryError::DigestParse(_) => "DIGEST_INVALID",
            RegistryError::ManifestInvalid(_) => "MANIFEST_INVALID",
            RegistryError::ManifestBlobUnknown(_) => "MANIFEST_BLOB_UNKNOWN",
            RegistryError::TagImmutable { .. } | RegistryError::TagInvalid(_) => "TAG_INVALID",
            RegistryError::RangeInvalid(_) => "BLOB_UPLOAD_INVALID",
            RegistryError::Unsupported(_) => "UNSUPPORTED",
            RegistryError::Denied(_) => "DENIED",
            RegistryError::Io { .. } | RegistryError::Build(_) | RegistryError::Http { .. } => {
                "UNKNOWN"
            }
        }
    }

    /// The HTTP status the OCI API answers with.
    pub fn http_status(&self) -> u16 {
        match self {
            RegistryError::NameUnknown(_)
            | RegistryError::ManifestUnknown { .. }
            | RegistryError::BlobUnknown(_)
            | RegistryError::BlobUploadUnknown(_) => 404,
            RegistryError::RangeInvalid(_) => 416,
            RegistryError::Unsupported(_) => 405,
            RegistryError::Denied(_) => 403,
            RegistryError::Io { .. } | RegistryError::Build(_) | RegistryError::Http { .. } => 500,
            _ => 400,
        }
    }
}

/// Wraps an IO error with what was being done.
pub(crate) fn io_error(
    context: impl std::fmt::Display,
) -> impl FnOnce(std::io::Error) -> RegistryError {
    move |source| RegistryError::Io {
        context: context.to_string(),
        source,
    }
}
