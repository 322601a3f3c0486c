//! IAM's query protocol (`Action=...&Version=2010-05-08`, XML answers) for users, access keys,
//! service-specific credentials (berth's bearer tokens) and user policies, so that `aws iam ...
//! --endpoint-url` works.

use crate::{iso8601, policy, Iam, IamError, Principal, TOKEN_SERVICE};

const NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";

/// XML text escaping.
pub fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

fn el(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", esc(value))
}

fn members(items: impl IntoIterator<Item = String>) -> String {
    items
        .into_iter()
        .map(|m| format!("<member>{m}</member>"))
        .collect()
}

fn user_xml(u: &serde_json::Value) -> String {
    ["Path", "UserName", "UserId", "Arn", "CreateDate"]
        .iter()
        .map(|k| el(k, u.get(*k).and_then(|v| v.as_str()).unwrap_or("")))
        .collect()
}

/// The XML error document and its status.
pub fn error_xml(e: &IamError, request_id: &str) -> (u16, String) {
    let kind = if e.status() >= 500 {
        "Receiver"
    } else {
        "Sender"
    };
    (
        e.status(),
        format!(
            "<ErrorResponse xmlns=\"{NS}\"><Error><Type>{kind}</Type><Code>{}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
            e.code(),
            esc(&e.to_string()),
            esc(request_id)
        ),
    )
}

struct Params<'a>(&'a [(String, String)]);

impl Params<'_> {
    fn opt(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str())
    }
    fn req(&self, k: &str) -> Result<&str, IamError> {
        self.opt(k)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| IamError::Validation(format!("{k}: required")))
    }
}

fn token_xml(id: &str, user: &str, status: &str, created: f64, password: Option<&str>) -> String {
    let mut s = String::new();
    s.push_str(&el("CreateDate", &iso8601(created)));
    s.push_str(&el("ServiceName", TOKEN_SERVICE));
    s.push_str(&el("ServiceUserName", &format!("{user}-at-berth")));
    if let Some(p) = password {
        s.push_str(&el("ServicePassword", p));
    }
    s.push_str(&el("ServiceSpecificCredentialId", id));
    s.push_str(&el("UserName", user));
    s.push_str(&el("Status", status));
    s
}

/// Handles one IAM action for `caller`: (status, XML body). Authorisation happened before.
pub fn handle(
    iam: &Iam,
    caller: &Principal,
    params: &[(String, String)],
    request_id: &str,
) -> (u16, String) {
    let p = Params(params);
    let action = p.opt("Action").unwrap_or("").to_string();
    match dispatch(iam, caller, &action, &p) {
        Ok(result) => (
            200,
            format!(
                "<{action}Response xmlns=\"{NS}\">{}<ResponseMetadata><RequestId>{}</RequestId></ResponseMetadata></{action}Response>",
                if result.is_empty() { String::new() } else { format!("<{action}Result>{result}</{action}Result>") },
                esc(request_id)
            ),
        ),
        Err(e) => error_xml(&e, request_id),
    }
}

fn dispatch(
    iam: &Iam,
    caller: &Principal,
    action: &str,
    p: &Params<'_>,
) -> Result<String, IamError> {
    // Operations on "the user" default to the caller, as in IAM.
    let user_or_caller = || p.opt("UserName").unwrap_or(&caller.user).to_string();
    Ok(match action {
        "CreateUser" => format!(
            "<User>{}</User>",
            user_xml(&iam.create_user(p.req("UserName")?)?)
        ),
        "GetUser" => format!(
            "<User>{}</User>",
            user_xml(&iam.get_user(&user_or_caller())?)
        ),
        "ListUsers" => format!(
            "<Users>{}</Users><IsTruncated>false</IsTruncated>",
            members(iam.list_users().iter().map(user_xml))
        ),
        "DeleteUser" => {
            iam.delete_user(p.req("UserName")?)?;
            String::new()
        }
        "CreateAccessKey" => {
            let user = user_or_caller();
            let (id, secret, created) = iam.create_access_key(&user)?;
            format!(
                "<AccessKey>{}{}{}{}{}</AccessKey>",
                el("UserName", &user),
                el("AccessKeyId", &id),
                el("Status", "Active"),
                el("SecretAccessKey", &secret),
                el("CreateDate", &iso8601(created))
            )
        }
        "ListAccessKeys" => {
            let user = user_or_caller();
            let keys = iam.list_access_keys(&user)?;
            format!(
                "<AccessKeyMetadata>{}</AccessKeyMetadata><IsTruncated>false</IsTruncated>",
                members(keys.iter().map(|(id, status, created)| {
                    format!(
                        "{}{}{}{}",
                        el("UserName", &user),
                        el("AccessKeyId", id),
                        el("Status", status),
                        el("CreateDate", &iso8601(*created))
                    )
                }))
            )
        }
        "UpdateAccessKey" => {
            iam.update_access_key(p.req("AccessKeyId")?, p.req("Status")?)?;
            String::new()
        }
        "DeleteAccessKey" => {
            iam.delete_access_key(p.req("AccessKeyId")?)?;
            String::new()
        }
        "AttachUserPolicy" => {
            iam.attach_user_policy(p.req("UserName")?, p.req("PolicyArn")?)?;
            String::new()
        }
        "DetachUserPolicy" => {
            iam.detach_user_policy(p.req("UserName")?, p.req("PolicyArn")?)?;
            String::new()
        }
        "ListAttachedUserPolicies" => {
            let arns = iam.attached_policies(p.req("UserName")?)?;
            format!(
                "<AttachedPolicies>{}</AttachedPolicies><IsTruncated>false</IsTruncated>",
                members(arns.iter().map(|a| {
                    let name = a.rsplit('/').next().unwrap_or(a);
                    format!("{}{}", el("PolicyName", name), el("PolicyArn", a))
                }))
            )
        }
        "ListPolicies" => format!(
            "<Policies>{}</Policies><IsTruncated>false</IsTruncated>",
            members(policy::BUILTINS.iter().map(|(name, _, desc)| {
                format!(
                    "{}{}{}{}{}{}",
                    el("PolicyName", name),
                    el("PolicyId", &format!("ANPA{}", name.to_ascii_uppercase())),
                    el("Arn", &format!("{}{name}", policy::BUILTIN_PREFIX)),
                    el("Path", "/berth/"),
                    el("DefaultVersionId", "v1"),
                    el("Description", desc)
                )
            }))
        ),
        "PutUserPolicy" => {
            iam.put_user_policy(
                p.req("UserName")?,
                p.req("PolicyName")?,
                p.req("PolicyDocument")?,
            )?;
            String::new()
        }
        "GetUserPolicy" => {
            let (user, name) = (p.req("UserName")?, p.req("PolicyName")?);
            let doc = iam.get_user_policy(user, name)?;
            // IAM returns the document URL-encoded; the AWS CLI decodes it.
            let encoded: String =
                percent_encoding::utf8_percent_encode(&doc, percent_encoding::NON_ALPHANUMERIC)
                    .to_string();
            format!(
                "{}{}{}",
                el("UserName", user),
                el("PolicyName", name),
                el("PolicyDocument", &encoded)
            )
        }
        "ListUserPolicies" => format!(
            "<PolicyNames>{}</PolicyNames><IsTruncated>false</IsTruncated>",
            members(
                iam.user_policy_names(p.req("UserName")?)?
                    .iter()
                    .map(|n| esc(n))
            )
        ),
        "DeleteUserPolicy" => {
            iam.delete_user_policy(p.req("UserName")?, p.req("PolicyName")?)?;
            String::new()
        }
        "CreateServiceSpecificCredential" => {
            let user = p.req("UserName")?;
            let service = p.req("ServiceName")?;
            if service != TOKEN_SERVICE {
                return Err(IamError::Validation(format!(
                    "ServiceName: berth issues credentials for service {TOKEN_SERVICE:?}, got {service:?}"
                )));
            }
            let (id, token, created) = iam.create_token(user)?;
            format!(
                "<ServiceSpecificCredential>{}</ServiceSpecificCredential>",
                token_xml(&id, user, "Active", created, Some(&token))
            )
        }
        "ListServiceSpecificCredentials" => {
            format!(
                "<ServiceSpecificCredentials>{}</ServiceSpecificCredentials>",
                members(iam.list_tokens(p.opt("UserName")).iter().map(
                    |(id, user, status, created)| token_xml(id, user, status, *created, None)
                ))
            )
        }
        "ResetServiceSpecificCredential" => {
            let id = p.req("ServiceSpecificCredentialId")?;
            let (user, token) = iam.reset_token(id)?;
            format!(
                "<ServiceSpecificCredential>{}</ServiceSpecificCredential>",
                token_xml(id, &user, "Active", crate::now(), Some(&token))
            )
        }
        "UpdateServiceSpecificCredential" => {
            iam.update_token(p.req("ServiceSpecificCredentialId")?, p.req("Status")?)?;
            String::new()
        }
        "DeleteServiceSpecificCredential" => {
            iam.delete_token(p.req("ServiceSpecificCredentialId")?)?;
            String::new()
        }
        other => {
            return Err(IamError::Validation(format!(
                "Action: berth's IAM does not serve {other:?}"
            )))
        }
    })
}

/// The resource an IAM action is authorised against: the user's ARN when it names one.
pub fn resource(iam: &Iam, params: &[(String, String)]) -> String {
    let p = Params(params);
    match p.opt("UserName") {
        Some(u) => format!("arn:aws:iam::{}:user/{u}", iam.account()),
        None => match p
            .opt("AccessKeyId")
            .or_else(|| p.opt("ServiceSpecificCredentialId"))
            .and_then(|id| iam.owner_of(id))
        {
            Some(u) => format!("arn:aws:iam::{}:user/{u}", iam.account()),
            None => "*".into(),
        },
    }
}
