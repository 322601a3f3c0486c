//! `berth auth ...` (users, access keys, tokens, policies: IAM's operations) and `berth audit`
//! (CloudTrail's LookupEvents over the audit log).

use crate::client::Client;
use crate::client_elb::XmlNode;
use crate::config::{credentials, Global};
use crate::output;
use anyhow::{bail, Context};
use clap::Subcommand;
use serde_json::{json, Value};

/// The built-in policies by their short names.
const POLICIES: &[(&str, &str)] = &[
    ("admin", "AdministratorAccess"),
    ("deployer", "Deployer"),
    ("read-only", "ReadOnlyAccess"),
    ("node", "NodeAccess"),
];
const POLICY_PREFIX: &str = "arn:aws:iam::aws:policy/berth/";

#[derive(Subcommand, Debug)]
pub enum AuthCommand {
    /// Who the current credential is.
    Whoami,
    /// Save a bearer token for this API address in the credentials file.
    Login {
        /// The token (default: read from standard input).
        token: Option<String>,
    },
    /// List users with their policies.
    Users,
    /// Create a user with a built-in policy (admin, deployer, read-only) and a bearer token.
    CreateUser {
        name: String,
        #[arg(long, default_value = "read-only", value_parser = ["admin", "deployer", "read-only"])]
        policy: String,
        /// Also create an access key pair (for the AWS CLI and SDKs).
        #[arg(long)]
        access_key: bool,
    },
    /// Delete a user with all its keys, tokens and policies.
    DeleteUser { name: String },
    /// Attach a built-in policy (admin, deployer, read-only) to a user.
    Attach { user: String, policy: String },
    /// Detach a built-in policy from a user.
    Detach { user: String, policy: String },
    /// Create an access key pair for a user (shown once).
    CreateKey { user: String },
    /// List a user's access keys.
    Keys { user: String },
    /// Revoke (delete) an access key; --deactivate only disables it.
    RevokeKey {
        id: String,
        #[arg(long)]
        deactivate: bool,
    },
    /// Replace an access key by a new one (the old one is deleted).
    RotateKey { id: String },
    /// Create a bearer token for a user (shown once).
    CreateToken { user: String },
    /// List bearer tokens.
    Tokens { user: Option<String> },
    /// Revoke (delete) a bearer token by id.
    RevokeToken { id: String },
    /// Give a token id a new value (the old value stops working).
    RotateToken { id: String },
    /// Lost the admin token? With the server stopped, make a new admin token directly in the
    /// state directory (needs read access to it and its master key) and save it.
    Recover {
        /// The user to give a new token (created with AdministratorAccess if missing).
        #[arg(long, default_value = "admin")]
        user: String,
    },
}

fn params(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn result<'a>(doc: &'a XmlNode, action: &str) -> anyhow::Result<&'a XmlNode> {
    doc.child(&format!("{action}Result"))
        .with_context(|| format!("{action}: the response has no result"))
}

fn policy_arn(name: &str) -> anyhow::Result<String> {
    if name.starts_with("arn:") {
        return Ok(name.to_string());
    }
    POLICIES
        .iter()
        .find(|(short, long)| *short == name || long.eq_ignore_ascii_case(name))
        .map(|(_, long)| format!("{POLICY_PREFIX}{long}"))
        .with_context(|| {
            format!("policy: expected admin, deployer, read-only or an ARN, got {name:?}")
        })
}

fn short_policy(arn: &str) -> String {
    let long = arn.rsplit('/').next().unwrap_or(arn);
    POLICIES
        .iter()
        .find(|(_, l)| *l == long)
        .map(|(s, _)| s.to_string())
        .unwrap_or_else(|| long.to_string())
}

fn create_token(c: &Client, user: &str) -> anyhow::Result<(String, String)> {
    let doc = c.iam(
        "CreateServiceSpecificCredential",
        &params(&[("UserName", user), ("ServiceName", "berth")]),
    )?;
    let cred = result(&doc, "CreateServiceSpecificCredential")?
        .child("ServiceSpecificCredential")
        .context("no credential in the response")?;
    Ok((
        cred.text_of("ServiceSpecificCredentialId")
            .unwrap_or_default(),
        cred.text_of("ServicePassword").unwrap_or_default(),
    ))
}

fn create_key(c: &Client, user: &str) -> anyhow::Result<(String, String)> {
    let doc = c.iam("CreateAccessKey", &params(&[("UserName", user)]))?;
    let key = result(&doc, "CreateAccessKey")?
        .child("AccessKey")
        .context("no access key in the response")?;
    Ok((
        key.text_of("AccessKeyId").unwrap_or_default(),
        key.text_of("SecretAccessKey").unwrap_or_default(),
    ))
}

fn key_owner(c: &Client, id: &str) -> anyhow::Result<String> {
    let doc = c.iam("ListUsers", &[])?;
    for u in result(&doc, "ListUsers")?.members("Users") {
        let name = u.text_of("UserName").unwrap_or_default();
        let keys = c.iam("ListAccessKeys", &params(&[("UserName", &name)]))?;
        let found = result(&keys, "ListAccessKeys")?
            .members("AccessKeyMetadata")
            .iter()
            .any(|k| k.text_of("AccessKeyId").as_deref() == Some(id));
        if found {
            return Ok(name);
        }
    }
    bail!("access key {id} not found")
}

fn show(g: &Global, v: Value, text: impl FnOnce(&Value)) -> anyhow::Result<i32> {
    if g.json() {
        output::json(&v);
    } else {
        text(&v);
    }
    Ok(0)
}

fn list_users(c: &Client) -> anyhow::Result<Vec<Value>> {
    let doc = c.iam("ListUsers", &[])?;
    let mut out = Vec::new();
    for u in result(&doc, "ListUsers")?.members("Users") {
        let name = u.text_of("UserName").unwrap_or_default();
        let pols = c.iam("ListAttachedUserPolicies", &params(&[("UserName", &name)]))?;
        let attached: Vec<String> = result(&pols, "ListAttachedUserPolicies")?
            .members("AttachedPolicies")
            .iter()
            .filter_map(|p| p.text_of("PolicyArn"))
            .map(|a| short_policy(&a))
            .collect();
        out.push(json!({
            "userName": name,
            "arn": u.text_of("Arn"),
            "created": u.text_of("CreateDate"),
            "policies": attached,
        }));
    }
    Ok(out)
}

pub fn run(g: &Global, cmd: AuthCommand) -> anyhow::Result<i32> {
    if let AuthCommand::Login { token } = cmd {
        let token = match token {
            Some(t) => t,
            None => {
                let mut line = String::new();
                std::io::stdin()
                    .read_line(&mut line)
                    .context("reading the token from standard input")?;
                line.trim().to_string()
            }
        };
        if token.is_empty() {
            bail!("token: expected a berth bearer token");
        }
        crate::client::use_token(token.clone());
        let c = Client::new(g.api_url())?;
        let me = c.get("/berth/v1/whoami")?;
        let path = credentials::save(&g.api_url(), &token)?;
        eprintln!(
            "logged in to {} as {} (saved in {})",
            g.api_url(),
            me["user"].as_str().unwrap_or("?"),
            path.display()
        );
        return Ok(0);
    }
    if let AuthCommand::Recover { user } = cmd {
        return recover(g, &user);
    }
    let c = Client::new(g.api_url())?;
    match cmd {
        AuthCommand::Login { .. } | AuthCommand::Recover { .. } => unreachable!("handled above"),
        AuthCommand::Whoami => {
            let me = c.get("/berth/v1/whoami")?;
            show(g, me, |v| {
                println!(
                    "{} ({}) with credential {}",
                    v["user"].as_str().unwrap_or("-"),
                    v["arn"].as_str().unwrap_or("-"),
                    v["credentialId"].as_str().unwrap_or("-")
                )
            })
        }
        AuthCommand::Users => {
            let users = list_users(&c)?;
            show(g, json!(users), |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|u| {
                        vec![
                            u["userName"].as_str().unwrap_or("").to_string(),
                            u["policies"]
                                .as_array()
                                .map(|p| {
                                    p.iter()
                                        .filter_map(Value::as_str)
                                        .collect::<Vec<_>>()
                                        .join(",")
                                })
                                .unwrap_or_default(),
                            u["created"].as_str().unwrap_or("").to_string(),
                        ]
                    })
                    .collect();
                output::table(&["USER", "POLICIES", "CREATED"], &rows);
            })
        }
        AuthCommand::CreateUser {
            name,
            policy,
            access_key,
        } => {
            let arn = policy_arn(&policy)?;
            c.iam("CreateUser", &params(&[("UserName", &name)]))?;
            c.iam(
                "AttachUserPolicy",
                &params(&[("UserName", &name), ("PolicyArn", &arn)]),
            )?;
            let (token_id, token) = create_token(&c, &name)?;
            let mut v =
                json!({"userName": name, "policy": policy, "tokenId": token_id, "token": token});
            if access_key {
                let (id, secret) = create_key(&c, &name)?;
                v["accessKeyId"] = json!(id);
                v["secretAccessKey"] = json!(secret);
            }
            show(g, v, |v| {
                println!(
                    "created user {} with policy {}",
                    v["userName"].as_str().unwrap_or(""),
                    v["policy"].as_str().unwrap_or("")
                );
                println!(
                    "token (shown only now): {}",
                    v["token"].as_str().unwrap_or("")
                );
                if let Some(id) = v["accessKeyId"].as_str() {
                    println!("AWS_ACCESS_KEY_ID={id}");
                    println!(
                        "AWS_SECRET_ACCESS_KEY={}",
                        v["secretAccessKey"].as_str().unwrap_or("")
                    );
                }
            })
        }
        AuthCommand::DeleteUser { name } => {
            let keys = c.iam("ListAccessKeys", &params(&[("UserName", &name)]))?;
            for k in result(&keys, "ListAccessKeys")?.members("AccessKeyMetadata") {
                if let Some(id) = k.text_of("AccessKeyId") {
                    c.iam("DeleteAccessKey", &params(&[("AccessKeyId", &id)]))?;
                }
            }
            let toks = c.iam(
                "ListServiceSpecificCredentials",
                &params(&[("UserName", &name)]),
            )?;
            for t in result(&toks, "ListServiceSpecificCredentials")?
                .members("ServiceSpecificCredentials")
            {
                if let Some(id) = t.text_of("ServiceSpecificCredentialId") {
                    c.iam(
                        "DeleteServiceSpecificCredential",
                        &params(&[("ServiceSpecificCredentialId", &id)]),
                    )?;
                }
            }
            let pols = c.iam("ListAttachedUserPolicies", &params(&[("UserName", &name)]))?;
            for p in result(&pols, "ListAttachedUserPolicies")?.members("AttachedPolicies") {
                if let Some(arn) = p.text_of("PolicyArn") {
                    c.iam(
                        "DetachUserPolicy",
                        &params(&[("UserName", &name), ("PolicyArn", &arn)]),
                    )?;
                }
            }
            let inline = c.iam("ListUserPolicies", &params(&[("UserName", &name)]))?;
            for n in result(&inline, "ListUserPolicies")?.members("PolicyNames") {
                c.iam(
                    "DeleteUserPolicy",
                    &params(&[("UserName", &name), ("PolicyName", &n.text)]),
                )?;
            }
            c.iam("DeleteUser", &params(&[("UserName", &name)]))?;
            show(g, json!({"deleted": name}), |_| {
                println!("deleted user {name}")
            })
        }
        AuthCommand::Attach { user, policy } => {
            let arn = policy_arn(&policy)?;
            c.iam(
                "AttachUserPolicy",
                &params(&[("UserName", &user), ("PolicyArn", &arn)]),
            )?;
            show(g, json!({"userName": user, "attached": arn}), |_| {
                println!("attached {policy} to {user}")
            })
        }
        AuthCommand::Detach { user, policy } => {
            let arn = policy_arn(&policy)?;
            c.iam(
                "DetachUserPolicy",
                &params(&[("UserName", &user), ("PolicyArn", &arn)]),
            )?;
            show(g, json!({"userName": user, "detached": arn}), |_| {
                println!("detached {policy} from {user}")
            })
        }
        AuthCommand::CreateKey { user } => {
            let (id, secret) = create_key(&c, &user)?;
            show(
                g,
                json!({"userName": user, "accessKeyId": id, "secretAccessKey": secret}),
                |_| {
                    println!("access key for {user} (the secret is shown only now):");
                    println!("AWS_ACCESS_KEY_ID={id}");
                    println!("AWS_SECRET_ACCESS_KEY={secret}");
                },
            )
        }
        AuthCommand::Keys { user } => {
            let doc = c.iam("ListAccessKeys", &params(&[("UserName", &user)]))?;
            let keys: Vec<Value> = result(&doc, "ListAccessKeys")?
                .members("AccessKeyMetadata")
                .iter()
                .map(|k| {
                    json!({"accessKeyId": k.text_of("AccessKeyId"), "status": k.text_of("Status"), "created": k.text_of("CreateDate")})
                })
                .collect();
            show(g, json!(keys), |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|k| {
                        ["accessKeyId", "status", "created"]
                            .iter()
                            .map(|f| k[*f].as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .collect();
                output::table(&["ACCESS KEY", "STATUS", "CREATED"], &rows);
            })
        }
        AuthCommand::RevokeKey { id, deactivate } => {
            if deactivate {
                c.iam(
                    "UpdateAccessKey",
                    &params(&[("AccessKeyId", &id), ("Status", "Inactive")]),
                )?;
            } else {
                c.iam("DeleteAccessKey", &params(&[("AccessKeyId", &id)]))?;
            }
            show(g, json!({"revoked": id, "deleted": !deactivate}), |_| {
                println!("revoked access key {id}")
            })
        }
        AuthCommand::RotateKey { id } => {
            let user = key_owner(&c, &id)?;
            let (new_id, secret) = create_key(&c, &user)?;
            c.iam("DeleteAccessKey", &params(&[("AccessKeyId", &id)]))?;
            show(
                g,
                json!({"userName": user, "revoked": id, "accessKeyId": new_id, "secretAccessKey": secret}),
                |_| {
                    println!(
                        "replaced {id} (deleted) for {user}; the new secret is shown only now:"
                    );
                    println!("AWS_ACCESS_KEY_ID={new_id}");
                    println!("AWS_SECRET_ACCESS_KEY={secret}");
                },
            )
        }
        AuthCommand::CreateToken { user } => {
            let (id, token) = create_token(&c, &user)?;
            show(
                g,
                json!({"userName": user, "tokenId": id, "token": token}),
                |_| println!("token {id} for {user} (shown only now): {token}"),
            )
        }
        AuthCommand::Tokens { user } => {
            let p = user
                .as_deref()
                .map(|u| params(&[("UserName", u)]))
                .unwrap_or_default();
            let doc = c.iam("ListServiceSpecificCredentials", &p)?;
            let toks: Vec<Value> = result(&doc, "ListServiceSpecificCredentials")?
                .members("ServiceSpecificCredentials")
                .iter()
                .map(|t| {
                    json!({"tokenId": t.text_of("ServiceSpecificCredentialId"), "userName": t.text_of("UserName"), "status": t.text_of("Status"), "created": t.text_of("CreateDate")})
                })
                .collect();
            show(g, json!(toks), |v| {
                let rows: Vec<Vec<String>> = v
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|t| {
                        ["tokenId", "userName", "status", "created"]
                            .iter()
                            .map(|f| t[*f].as_str().unwrap_or("").to_string())
                            .collect()
                    })
                    .collect();
                output::table(&["TOKEN ID", "USER", "STATUS", "CREATED"], &rows);
            })
        }
        AuthCommand::RevokeToken { id } => {
            c.iam(
                "DeleteServiceSpecificCredential",
                &params(&[("ServiceSpecificCredentialId", &id)]),
            )?;
            show(g, json!({"revoked": id}), |_| {
                println!("revoked token {id}")
            })
        }
        AuthCommand::RotateToken { id } => {
            let doc = c.iam(
                "ResetServiceSpecificCredential",
                &params(&[("ServiceSpecificCredentialId", &id)]),
            )?;
            let token = result(&doc, "ResetServiceSpecificCredential")?
                .child("ServiceSpecificCredential")
                .and_then(|c| c.text_of("ServicePassword"))
                .unwrap_or_default();
            show(g, json!({"tokenId": id, "token": token}), |v| {
                println!(
                    "new value of token {id} (shown only now): {}",
                    v["token"].as_str().unwrap_or("")
                )
            })
        }
    }
}

/// `berth audit`: the audit log, newest first.
pub fn audit(
    g: &Global,
    user: Option<String>,
    action: Option<String>,
    since: Option<u64>,
    limit: u32,
) -> anyhow::Result<i32> {
    let c = Client::new(g.api_url())?;
    let mut attrs = Vec::new();
    if let Some(u) = user {
        attrs.push(json!({"AttributeKey": "Username", "AttributeValue": u}));
    }
    if let Some(a) = action {
        attrs.push(json!({"AttributeKey": "EventName", "AttributeValue": a}));
    }
    let mut body = json!({"LookupAttributes": attrs, "MaxResults": limit.clamp(1, 50)});
    if let Some(secs) = since {
        body["StartTime"] = json!(berth_model::now() - secs as f64);
    }
    let v = c.lookup_events(body)?;
    show(g, v, |v| {
        let rows: Vec<Vec<String>> = v["Events"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|e| {
                let detail: Value = e["CloudTrailEvent"]
                    .as_str()
                    .and_then(|s| serde_json::from_str(s).ok())
                    .unwrap_or_default();
                vec![
                    output::ago(e["EventTime"].as_f64()),
                    e["Username"].as_str().unwrap_or("").to_string(),
                    format!(
                        "{}:{}",
                        e["EventSource"]
                            .as_str()
                            .unwrap_or("")
                            .trim_end_matches(".amazonaws.com"),
                        e["EventName"].as_str().unwrap_or("")
                    ),
                    detail["decision"].as_str().unwrap_or("").to_string(),
                    detail["status"].to_string(),
                    detail["resource"].as_str().unwrap_or("").to_string(),
                ]
            })
            .collect();
        output::table(
            &["WHEN", "USER", "ACTION", "DECISION", "STATUS", "RESOURCE"],
            &rows,
        );
    })
}

/// `berth auth recover`: offline, on the state directory, while the server is stopped.
fn recover(g: &Global, user: &str) -> anyhow::Result<i32> {
    if crate::cmd_up::live_pid(g, "server").is_some() {
        bail!("the server is running: stop it first (`berth down`), then run `berth auth recover` again");
    }
    let state = g.state_dir();
    let secrets = berth_secrets::Secrets::open(
        state.join("secrets"),
        berth_secrets::MasterKeySource::from_env(),
    )
    .map_err(|e| anyhow::anyhow!("opening the secret store (for the master key): {e}"))?;
    let iam = berth_iam::Iam::open(state.join("iam"), secrets)
        .map_err(|e| anyhow::anyhow!("opening the identity store: {e}"))?;
    if iam.get_user(user).is_err() {
        iam.create_user(user).map_err(|e| anyhow::anyhow!("{e}"))?;
        iam.attach_user_policy(user, &format!("{POLICY_PREFIX}AdministratorAccess"))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
    }
    let (id, token, _) = iam.create_token(user).map_err(|e| anyhow::anyhow!("{e}"))?;
    let path = credentials::save(&g.api_url(), &token)?;
    show(
        g,
        json!({"userName": user, "tokenId": id, "token": token}),
        |_| {
            println!(
                "new token {id} for {user} (saved in {}; shown only now): {token}",
                path.display()
            )
        },
    )
}
