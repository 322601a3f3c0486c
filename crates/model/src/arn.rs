//! AWS-shaped ARNs for berth's resources, and parsing of names-or-ARNs as ECS accepts them.

use serde::{Deserialize, Serialize};

/// The region and account id that berth puts in every ARN.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Arns {
    pub region: String,
    pub account: String,
}

impl Default for Arns {
    fn default() -> Self {
        Arns {
            region: "us-east-1".into(),
            account: "000000000000".into(),
        }
    }
}

impl Arns {
    fn arn(&self, service: &str, resource: &str) -> String {
        format!(
            "arn:aws:{service}:{}:{}:{resource}",
            self.region, self.account
        )
    }
    pub fn cluster(&self, cluster: &str) -> String {
        self.arn("ecs", &format!("cluster/{cluster}"))
    }
    pub fn service(&self, cluster: &str, service: &str) -> String {
        self.arn("ecs", &format!("service/{cluster}/{service}"))
    }
    pub fn task(&self, cluster: &str, task_id: &str) -> String {
        self.arn("ecs", &format!("task/{cluster}/{task_id}"))
    }
    pub fn container(&self, cluster: &str, task_id: &str, container_id: &str) -> String {
        self.arn(
            "ecs",
            &format!("container/{cluster}/{task_id}/{container_id}"),
        )
    }
    pub fn task_definition(&self, family: &str, revision: u32) -> String {
        self.arn("ecs", &format!("task-definition/{family}:{revision}"))
    }
    pub fn container_instance(&self, cluster: &str, id: &str) -> String {
        self.arn("ecs", &format!("container-instance/{cluster}/{id}"))
    }
    pub fn elb(&self, resource: &str) -> String {
        self.arn("elasticloadbalancing", resource)
    }
}

/// The last path segment of an ARN, or the string itself when it is a plain name:
/// `arn:aws:ecs:r:a:cluster/prod` → `prod`.
pub fn name_of(name_or_arn: &str) -> &str {
    if name_or_arn.starts_with("arn:") {
        name_or_arn.rsplit('/').next().unwrap_or(name_or_arn)
    } else {
        name_or_arn
    }
}

/// Parses a task definition reference (`family`, `family:rev`, or its ARN) into family and revision.
pub fn task_definition_ref(reference: &str) -> (String, Option<u32>) {
    let tail = if reference.starts_with("arn:") {
        reference.rsplit('/').next().unwrap_or(reference)
    } else {
        reference
    };
    match tail.rsplit_once(':') {
        Some((family, rev)) => match rev.parse::<u32>() {
            Ok(n) => (family.to_string(), Some(n)),
            Err(_) => (tail.to_string(), None),
        },
        None => (tail.to_string(), None),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arns_have_aws_shape() {
        let a = Arns::default();
        assert_eq!(
            a.service("prod", "web"),
            "arn:aws:ecs:us-east-1:000000000000:service/prod/web"
        );
        assert_eq!(
            a.task_definition("web", 3),
            "arn:aws:ecs:us-east-1:000000000000:task-definition/web:3"
        );
    }

    #[test]
    fn names_and_refs_parse() {
        assert_eq!(name_of("arn:aws:ecs:us-east-1:1:cluster/prod"), "prod");
        assert_eq!(name_of("prod"), "prod");
        assert_eq!(task_definition_ref("web:3"), ("web".into(), Some(3)));
        assert_eq!(task_definition_ref("web"), ("web".into(), None));
        assert_eq!(
            task_definition_ref("arn:aws:ecs:us-east-1:1:task-definition/web:7"),
            ("web".into(), Some(7))
        );
    }
}
