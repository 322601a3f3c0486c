//! berth-api-aws: AWS wire protocols (awsJson, query/XML) as codecs, independent of any server.

pub mod cloudwatch;
pub mod elbv2;
pub mod json;
