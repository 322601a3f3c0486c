//! berth-registry: the OCI image registry (ECR counterpart).
