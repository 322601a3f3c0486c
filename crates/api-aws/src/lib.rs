//! berth-api-aws.
