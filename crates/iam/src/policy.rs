//! IAM policy documents: parsing (with the failing field named) and evaluation with IAM's rules:
//! deny by default, an explicit Deny wins over any Allow, `*` and `?` wildcards in actions
//! (case-insensitive) and resources (case-sensitive).

use serde_json::Value;

/// Allow or Deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    Allow,
    Deny,
}

/// One statement of a policy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Statement {
    pub sid: Option<String>,
    pub effect: Effect,
    /// `Action` patterns, or `NotAction` patterns when `not_action`.
    pub actions: Vec<String>,
    pub not_action: bool,
    /// `Resource` patterns, or `NotResource` patterns when `not_resource`.
    pub resources: Vec<String>,
    pub not_resource: bool,
}

/// A parsed policy document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyDocument {
    pub statements: Vec<Statement>,
}

/// The outcome of evaluating policies for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A statement denied it explicitly.
    ExplicitDeny,
    /// No statement allowed it.
    ImplicitDeny,
}

fn strings(v: &Value, field: &str) -> Result<Vec<String>, String> {
    match v {
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, item)| {
                item.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| format!("{field}[{i}]: expected a string"))
            })
            .collect(),
        _ => Err(format!("{field}: expected a string or a list of strings")),
    }
}

/// Parses a policy in IAM's JSON form. Errors name the field (`Statement[1].Effect: ...`).
/// `Condition` is refused rather than ignored: ignoring it would grant more than was written.
pub fn parse(text: &str) -> Result<PolicyDocument, String> {
    let doc: Value =
        serde_json::from_str(text).map_err(|e| format!("policy document: expected JSON, {e}"))?;
    let obj = doc
        .as_object()
        .ok_or("policy document: expected a JSON object")?;
    if let Some(v) = obj.get("Version") {
        match v.as_str() {
            Some("2012-10-17") | Some("2008-10-17") => {}
            _ => return Err("Version: expected \"2012-10-17\"".into()),
        }
    }
    for key in obj.keys() {
        if !matches!(key.as_str(), "Version" | "Statement" | "Id") {
            return Err(format!(
                "{key}: unknown field (expected Version, Id, Statement)"
            ));
        }
    }
    let raw = match obj.get("Statement") {
        Some(Value::Array(items)) => items.clone(),
        Some(v @ Value::Object(_)) => vec![v.clone()],
        Some(_) => return Err("Statement: expected an object or a list of objects".into()),
        None => return Err("Statement: required".into()),
    };
    let mut statements = Vec::with_capacity(raw.len());
    for (i, s) in raw.iter().enumerate() {
        let at = |f: &str| format!("Statement[{i}].{f}");
        let so = s
            .as_object()
            .ok_or_else(|| format!("Statement[{i}]: expected an object"))?;
        for key in so.keys() {
            match key.as_str() {
                "Sid" | "Effect" | "Action" | "NotAction" | "Resource" | "NotResource" => {}
                "Condition" => {
                    return Err(format!(
                        "{}: not supported by berth (write the statement without it)",
                        at("Condition")
                    ))
                }
                "Principal" | "NotPrincipal" => {
                    return Err(format!(
                        "{}: identity policies attach to users and take no Principal",
                        at(key)
                    ))
                }
                other => return Err(format!("{}: unknown field", at(other))),
            }
        }
        let effect = match so.get("Effect").and_then(Value::as_str) {
            Some("Allow") => Effect::Allow,
            Some("Deny") => Effect::Deny,
            _ => return Err(format!("{}: expected \"Allow\" or \"Deny\"", at("Effect"))),
        };
        let (actions, not_action) = match (so.get("Action"), so.get("NotAction")) {
            (Some(a), None) => (strings(a, &at("Action"))?, false),
            (None, Some(a)) => (strings(a, &at("NotAction"))?, true),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}: give Action or NotAction, not both",
                    at("Action")
                ))
            }
            (None, None) => return Err(format!("{}: required", at("Action"))),
        };
        for (j, a) in actions.iter().enumerate() {
            if a != "*" && !a.contains(':') {
                return Err(format!(
                    "{}[{j}]: expected \"service:Operation\" (like \"ecs:UpdateService\") or \"*\", got {a:?}",
                    at(if not_action { "NotAction" } else { "Action" })
                ));
            }
        }
        let (resources, not_resource) = match (so.get("Resource"), so.get("NotResource")) {
            (Some(r), None) => (strings(r, &at("Resource"))?, false),
            (None, Some(r)) => (strings(r, &at("NotResource"))?, true),
            (Some(_), Some(_)) => {
                return Err(format!(
                    "{}: give Resource or NotResource, not both",
                    at("Resource")
                ))
            }
            (None, None) => return Err(format!("{}: required", at("Resource"))),
        };
        statements.push(Statement {
            sid: so.get("Sid").and_then(Value::as_str).map(str::to_string),
            effect,
            actions,
            not_action,
            resources,
            not_resource,
        });
    }
    Ok(PolicyDocument { statements })
}

/// `*` matches any run of characters, `?` exactly one.
pub fn wildcard_match(pattern: &str, text: &str, ignore_case: bool) -> bool {
    let fold = |c: char| {
        if ignore_case {
            c.to_ascii_lowercase()
        } else {
            c
        }
    };
    let p: Vec<char> = pattern.chars().map(fold).collect();
    let t: Vec<char> = text.chars().map(fold).collect();
    // Iterative matcher with backtracking to the last `*`.
    let (mut pi, mut ti) = (0usize, 0usize);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    while pi < p.len() && p[pi] == '*' {
        pi += 1;
    }
    pi == p.len()
}

impl Statement {
    fn applies(&self, action: &str, resource: &str) -> bool {
        let action_hit = self.actions.iter().any(|a| wildcard_match(a, action, true));
        let resource_hit = self
            .resources
            .iter()
            .any(|r| wildcard_match(r, resource, false));
        (action_hit != self.not_action) && (resource_hit != self.not_resource)
    }
}

/// Evaluates `policies` for `action` on `resource`.
pub fn evaluate<'a>(
    policies: impl IntoIterator<Item = &'a PolicyDocument>,
    action: &str,
    resource: &str,
) -> Decision {
    let mut allowed = false;
    for doc in policies {
        for s in &doc.statements {
            if s.applies(action, resource) {
                match s.effect {
                    Effect::Deny => return Decision::ExplicitDeny,
                    Effect::Allow => allowed = true,
                }
            }
        }
    }
    if allowed {
        Decision::Allow
    } else {
        Decision::ImplicitDeny
    }
}

/// The ARN prefix of berth's built-in managed policies.
pub const BUILTIN_PREFIX: &str = "arn:aws:iam::aws:policy/berth/";

/// Everything.
pub const ADMIN: &str =
    r#"{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Action":"*","Resource":"*"}]}"#;

/// What a CI pipeline needs and nothing else: push and pull images, register task definitions,
/// update services and read their status (no secret values, no users or credentials).
pub const DEPLOYER: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"Images","Effect":"Allow","Action":["ecr:GetAuthorizationToken","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer","ecr:BatchCheckLayerAvailability","ecr:InitiateLayerUpload","ecr:UploadLayerPart","ecr:CompleteLayerUpload","ecr:PutImage","ecr:DescribeImages","ecr:DescribeRepositories","ecr:ListImages","ecr:CreateRepository"],"Resource":"*"},
 {"Sid":"Deploy","Effect":"Allow","Action":["ecs:RegisterTaskDefinition","ecs:UpdateService","ecs:Describe*","ecs:List*","elasticloadbalancing:Describe*","cloudwatch:GetMetricData","cloudwatch:GetMetricStatistics","cloudwatch:DescribeAlarms","logs:GetLogEvents","logs:FilterLogEvents","logs:DescribeLogStreams","berth:DescribeStatus"],"Resource":"*"}
]}"#;

/// Reads everything except secret values and credentials.
pub const READ_ONLY: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Sid":"Read","Effect":"Allow","Action":["*:Describe*","*:List*","*:Get*","*:BatchGet*","*:Filter*","logs:StartQuery","logs:StopQuery","logs:TestMetricFilter","ecr:BatchCheckLayerAvailability","cloudtrail:LookupEvents"],"Resource":"*"},
 {"Sid":"NoSecretValues","Effect":"Deny","Action":["secretsmanager:GetSecretValue","secretsmanager:BatchGetSecretValue","ecr:GetAuthorizationToken"],"Resource":"*"}
]}"#;

/// The node credential of agents and proxies: the internal interfaces and image pulls.
pub const NODE: &str = r#"{"Version":"2012-10-17","Statement":[
 {"Effect":"Allow","Action":["berth:Agent*","berth:Proxy*","ecr:BatchGetImage","ecr:GetDownloadUrlForLayer"],"Resource":"*"}
]}"#;

/// The built-in managed policies: (name, document, description).
pub const BUILTINS: &[(&str, &str, &str)] = &[
    (
        "AdministratorAccess",
        ADMIN,
        "every action on every resource",
    ),
    (
        "Deployer",
        DEPLOYER,
        "push images, register task definitions, update services, read their status",
    ),
    (
        "ReadOnlyAccess",
        READ_ONLY,
        "describe, list and get everything but secret values and registry tokens",
    ),
    (
        "NodeAccess",
        NODE,
        "the agent and proxy interfaces and image pulls",
    ),
];

/// The document of a built-in policy by ARN (`arn:aws:iam::aws:policy/berth/<Name>`) or name.
pub fn builtin(arn_or_name: &str) -> Option<&'static str> {
    let name = arn_or_name
        .strip_prefix(BUILTIN_PREFIX)
        .unwrap_or(arn_or_name);
    BUILTINS
        .iter()
        .find(|(n, _, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, d, _)| *d)
}

/// A built-in policy, parsed once (the auth layer evaluates it on every request).
pub fn builtin_document(arn_or_name: &str) -> Option<&'static PolicyDocument> {
    static PARSED: std::sync::OnceLock<Vec<(&'static str, PolicyDocument)>> =
        std::sync::OnceLock::new();
    let name = arn_or_name
        .strip_prefix(BUILTIN_PREFIX)
        .unwrap_or(arn_or_name);
    PARSED
        .get_or_init(|| {
            BUILTINS
                .iter()
                .filter_map(|(n, d, _)| parse(d).ok().map(|doc| (*n, doc)))
                .collect()
        })
        .iter()
        .find(|(n, _)| n.eq_ignore_ascii_case(name))
        .map(|(_, d)| d)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn wildcards() {
        assert!(wildcard_match(
            "ecs:Describe*",
            "ecs:DescribeServices",
            true
        ));
        assert!(wildcard_match(
            "ecs:describe*",
            "ECS:DescribeServices",
            true
        ));
        assert!(!wildcard_match("ecs:Describe*", "ecs:UpdateService", true));
        assert!(wildcard_match("*:List*", "ecr:ListImages", true));
        assert!(wildcard_match(
            "ecs:?pdateService",
            "ecs:UpdateService",
            true
        ));
        assert!(!wildcard_match(
            "ecs:?UpdateService",
            "ecs:UpdateService",
            true
        ));
        assert!(wildcard_match("a*b*c", "aXXbYYbc", false));
        assert!(!wildcard_match("arn:*:Secret", "arn:x:secret", false));
        assert!(wildcard_match("*", "", false));
    }

    #[test]
    fn deny_by_default_and_explicit_deny_wins() {
        let ro = parse(READ_ONLY).unwrap();
        assert_eq!(
            evaluate([&ro], "ecs:DescribeServices", "*"),
            Decision::Allow
        );
        assert_eq!(
            evaluate(
                [&ro],
                "ecs:UpdateService",
                "arn:aws:ecs:us-east-1:0:service/c/s"
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate([&ro], "secretsmanager:GetSecretValue", "x"),
            Decision::ExplicitDeny
        );
        let admin = parse(ADMIN).unwrap();
        // Deny in one policy beats Allow in another.
        assert_eq!(
            evaluate([&admin, &ro], "secretsmanager:GetSecretValue", "x"),
            Decision::ExplicitDeny
        );
    }

    #[test]
    fn deployer_can_deploy_but_not_read_secrets_or_manage_users() {
        let d = parse(DEPLOYER).unwrap();
        for ok in [
            "ecs:UpdateService",
            "ecs:RegisterTaskDefinition",
            "ecs:DescribeServices",
            "ecr:PutImage",
        ] {
            assert_eq!(evaluate([&d], ok, "*"), Decision::Allow, "{ok}");
        }
        for no in [
            "secretsmanager:GetSecretValue",
            "iam:CreateUser",
            "iam:CreateAccessKey",
            "ecs:DeleteService",
        ] {
            assert_eq!(evaluate([&d], no, "*"), Decision::ImplicitDeny, "{no}");
        }
    }

    #[test]
    fn resources_and_not_action() {
        let p = parse(
            r#"{"Version":"2012-10-17","Statement":[
            {"Effect":"Allow","Action":"ecs:UpdateService","Resource":"arn:aws:ecs:*:*:service/prod/web-*"},
            {"Effect":"Allow","NotAction":"iam:*","Resource":"arn:aws:logs:*"}]}"#,
        )
        .unwrap();
        assert_eq!(
            evaluate(
                [&p],
                "ecs:UpdateService",
                "arn:aws:ecs:us-east-1:0:service/prod/web-1"
            ),
            Decision::Allow
        );
        assert_eq!(
            evaluate(
                [&p],
                "ecs:UpdateService",
                "arn:aws:ecs:us-east-1:0:service/dev/web-1"
            ),
            Decision::ImplicitDeny
        );
        assert_eq!(
            evaluate(
                [&p],
                "logs:PutLogEvents",
                "arn:aws:logs:us-east-1:0:log-group:x"
            ),
            Decision::Allow
        );
        assert_eq!(
            evaluate(
                [&p],
                "iam:CreateUser",
                "arn:aws:logs:us-east-1:0:log-group:x"
            ),
            Decision::ImplicitDeny
        );
    }

    #[test]
    fn bad_documents_name_the_field() {
        let cases = [
            ("{}", "Statement: required"),
            (
                r#"{"Statement":[{"Effect":"Maybe","Action":"*","Resource":"*"}]}"#,
                "Statement[0].Effect",
            ),
            (
                r#"{"Statement":{"Effect":"Allow","Resource":"*"}}"#,
                "Statement[0].Action: required",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"UpdateService","Resource":"*"}]}"#,
                "Statement[0].Action[0]",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":"*","Resource":"*","Condition":{}}]}"#,
                "Statement[0].Condition",
            ),
            (
                r#"{"Statement":[{"Effect":"Allow","Action":[1],"Resource":"*"}]}"#,
                "Statement[0].Action[0]: expected a string",
            ),
            (r#"{"Version":"2020","Statement":[]}"#, "Version"),
            ("[", "expected JSON"),
        ];
        for (doc, want) in cases {
            let err = parse(doc).unwrap_err();
            assert!(err.contains(want), "{doc}: {err}");
        }
    }

    #[test]
    fn builtins_parse() {
        for (name, doc, _) in BUILTINS {
            parse(doc).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(builtin(&format!("{BUILTIN_PREFIX}{name}")).is_some());
        }
        assert!(builtin("Nope").is_none());
    }
}
