//! Identity and access for berth, in IAM's model: users, access keys (for AWS SigV4), bearer
//! tokens (IAM's service-specific credentials with service name `berth`, for the CLI, the
//! dashboard and scripts), policies in IAM's JSON form attached to users (built-in ones: admin,
//! deployer, read-only, node), and an append-only audit log queried with CloudTrail's
//! LookupEvents.
//!
//! **Invariants**: a bearer token is stored only as its SHA-256 hash. An access key's secret is
//! stored sealed under the master key (AES-256-GCM), because verifying a SigV4 signature needs
//! it; it is never written in clear and only shown once, by CreateAccessKey. Every decision
//! denies by default and an explicit Deny wins.

pub mod api;
pub mod audit;
pub mod policy;
pub mod sigv4;

use berth_secrets::crypto::Sealed;
use berth_secrets::Secrets;
use policy::{Decision, PolicyDocument};
use rand::Rng;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard};

/// The user of the node credential (agents and proxies).
pub const NODE_USER: &str = "berth-node";
/// The user created on first start.
pub const ADMIN_USER: &str = "admin";
/// The service name of berth's bearer tokens (IAM service-specific credentials).
pub const TOKEN_SERVICE: &str = "berth";
/// Registry tokens (ECR GetAuthorizationToken) live 12 hours, as ECR's do.
pub const REGISTRY_TOKEN_SECONDS: f64 = 12.0 * 3600.0;

/// An error of an IAM operation, with IAM's error code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IamError {
    #[error("{0}")]
    NoSuchEntity(String),
    #[error("{0}")]
    EntityAlreadyExists(String),
    #[error("{0}")]
    Validation(String),
    #[error("{0}")]
    MalformedPolicyDocument(String),
    #[error("{0}")]
    DeleteConflict(String),
    #[error("{0}")]
    LimitExceeded(String),
    #[error("{0}")]
    Internal(String),
}

impl IamError {
    pub fn code(&self) -> &'static str {
        match self {
            IamError::NoSuchEntity(_) => "NoSuchEntity",
            IamError::EntityAlreadyExists(_) => "EntityAlreadyExists",
            IamError::Validation(_) => "ValidationError",
            IamError::MalformedPolicyDocument(_) => "MalformedPolicyDocument",
            IamError::DeleteConflict(_) => "DeleteConflict",
            IamError::LimitExceeded(_) => "LimitExceeded",
            IamError::Internal(_) => "ServiceFailure",
        }
    }

    pub fn status(&self) -> u16 {
        match self {
            IamError::NoSuchEntity(_) => 404,
            IamError::EntityAlreadyExists(_) | IamError::DeleteConflict(_) => 409,
            IamError::Internal(_) => 500,
            _ => 400,
        }
    }
}

/// Why a request was not authenticated.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    #[error("Missing Authentication Token: sign the request (AWS SigV4 with a berth access key) or send `Authorization: Bearer <token>`")]
    Missing,
    #[error("The security token included in the request is invalid: unknown access key {0}")]
    UnknownKey(String),
    #[error("The security token included in the request is invalid: unknown or revoked token")]
    BadToken,
    #[error("The access key {0} is inactive")]
    Inactive(String),
    #[error("{0}")]
    Signature(#[from] sigv4::SigError),
}

/// Who made a request, once authenticated.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Principal {
    pub user: String,
    pub arn: String,
    /// The access key id or the token id used.
    pub credential_id: String,
}

impl Principal {
    /// The actor string recorded in events and audit logs (`user:<name>`).
    pub fn actor(&self) -> String {
        format!("user:{}", self.user)
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct User {
    name: String,
    id: String,
    arn: String,
    created: f64,
    #[serde(default)]
    attached: Vec<String>,
    #[serde(default)]
    inline: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct AccessKey {
    id: String,
    user: String,
    status: String,
    created: f64,
    secret: Sealed,
    #[serde(default)]
    last_used: Option<f64>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct Token {
    id: String,
    user: String,
    /// Hex SHA-256 of the token.
    hash: String,
    status: String,
    created: f64,
    service: String,
    #[serde(default)]
    expires: Option<f64>,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
struct State {
    users: BTreeMap<String, User>,
    keys: BTreeMap<String, AccessKey>,
    tokens: BTreeMap<String, Token>,
}

struct Inner {
    dir: PathBuf,
    secrets: Secrets,
    region: String,
    account: String,
    state: Mutex<State>,
    audit: Mutex<()>,
}

/// The identity store; cheap to clone.
#[derive(Clone)]
pub struct Iam {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn random_string(len: usize, alphabet: &[u8]) -> String {
    let mut rng = rand::rngs::OsRng;
    (0..len)
        .map(|_| alphabet[rng.gen_range(0..alphabet.len())] as char)
        .collect()
}

const UPPER: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
const SECRET_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
const TOKEN_CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";

/// A new bearer token (`berth_` and 40 random characters, about 238 bits).
pub fn new_token() -> String {
    format!("berth_{}", random_string(40, TOKEN_CHARS))
}

fn key_aad(id: &str) -> String {
    format!("iam-access-key:{id}")
}

/// User names: IAM's rules (1–64 of `\w+=,.@-`).
pub fn validate_user_name(name: &str) -> Result<(), IamError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_+=,.@-".contains(c));
    if ok {
        Ok(())
    } else {
        Err(IamError::Validation(format!(
            "UserName: expected 1-64 characters of letters, digits and _+=,.@-, got {name:?}"
        )))
    }
}

impl Iam {
    /// Opens (creating) the store under `dir`; access-key secrets are sealed with the master key
    /// of `secrets`.
    pub fn open(dir: PathBuf, secrets: Secrets) -> Result<Iam, IamError> {
        std::fs::create_dir_all(&dir)
            .map_err(|e| IamError::Internal(format!("{}: {e}", dir.display())))?;
        let path = dir.join("iam.json");
        let state = match std::fs::read(&path) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| IamError::Internal(format!("{}: {e}", path.display())))?,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => State::default(),
            Err(e) => return Err(IamError::Internal(format!("{}: {e}", path.display()))),
        };
        let region = std::env::var("BERTH_REGION").unwrap_or_else(|_| "us-east-1".into());
        let account = std::env::var("BERTH_ACCOUNT_ID").unwrap_or_else(|_| "000000000000".into());
        Ok(Iam {
            inner: Arc::new(Inner {
                dir,
                secrets,
                region,
                account,
                state: Mutex::new(state),
                audit: Mutex::new(()),
            }),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn region(&self) -> &str {
        &self.inner.region
    }

    pub fn account(&self) -> &str {
        &self.inner.account
    }

    /// Changes the state on a copy, writes it (atomically, mode 0600), then keeps it.
    fn update<R>(&self, f: impl FnOnce(&mut State) -> Result<R, IamError>) -> Result<R, IamError> {
        let mut guard = lock(&self.inner.state);
        let mut next = guard.clone();
        let r = f(&mut next)?;
        let bytes =
            serde_json::to_vec_pretty(&next).map_err(|e| IamError::Internal(e.to_string()))?;
        berth_secrets::write_private(&self.inner.dir.join("iam.json"), &bytes)
            .map_err(|e| IamError::Internal(e.to_string()))?;
        *guard = next;
        Ok(r)
    }

    fn user_arn(&self, name: &str) -> String {
        format!("arn:aws:iam::{}:user/{name}", self.inner.account)
    }

    /// True when no user exists yet (a fresh state directory).
    pub fn is_empty(&self) -> bool {
        lock(&self.inner.state).users.is_empty()
    }

    /// On a fresh store: creates the `admin` user with AdministratorAccess and a bearer token,
    /// `token` when given (the caller generated and will show it), else a new one. Returns the
    /// token when one was created; `None` when users already exist.
    pub fn bootstrap_admin(&self, token: Option<String>) -> Result<Option<String>, IamError> {
        if !self.is_empty() {
            return Ok(None);
        }
        let token = token.unwrap_or_else(new_token);
        if token.len() < 20 {
            return Err(IamError::Validation(
                "BERTH_BOOTSTRAP_TOKEN: expected at least 20 characters".into(),
            ));
        }
        self.create_user(ADMIN_USER)?;
        self.attach_user_policy(
            ADMIN_USER,
            &format!("{}AdministratorAccess", policy::BUILTIN_PREFIX),
        )?;
        self.add_token(ADMIN_USER, &token, None)?;
        Ok(Some(token))
    }

    /// Makes sure the node credential exists: a token of user `berth-node` (NodeAccess) whose
    /// clear text is in `path` (mode 0600) for the agents and proxies of this machine.
    pub fn ensure_node_token(&self, path: &Path) -> Result<(), IamError> {
        if let Ok(text) = std::fs::read_to_string(path) {
            if self.authenticate_token(text.trim(), now()).is_ok() {
                return Ok(());
            }
        }
        let exists = lock(&self.inner.state).users.contains_key(NODE_USER);
        if !exists {
            self.create_user(NODE_USER)?;
            self.attach_user_policy(NODE_USER, &format!("{}NodeAccess", policy::BUILTIN_PREFIX))?;
        }
        let token = new_token();
        self.add_token(NODE_USER, &token, None)?;
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)
                .map_err(|e| IamError::Internal(format!("{}: {e}", parent.display())))?;
        }
        berth_secrets::write_private(path, token.as_bytes())
            .map_err(|e| IamError::Internal(e.to_string()))
    }

    // ---- users ----

    /// CreateUser.
    pub fn create_user(&self, name: &str) -> Result<serde_json::Value, IamError> {
        validate_user_name(name)?;
        let arn = self.user_arn(name);
        let user = self.update(|st| {
            if st.users.keys().any(|n| n.eq_ignore_ascii_case(name)) {
                return Err(IamError::EntityAlreadyExists(format!(
                    "User with name {name} already exists."
                )));
            }
            let u = User {
                name: name.to_string(),
                id: format!("AIDA{}", random_string(17, UPPER)),
                arn,
                created: now(),
                attached: vec![],
                inline: BTreeMap::new(),
            };
            st.users.insert(name.to_string(), u.clone());
            Ok(u)
        })?;
        Ok(user_json(&user))
    }

    fn no_user(name: &str) -> IamError {
        IamError::NoSuchEntity(format!("The user with name {name} cannot be found."))
    }

    /// GetUser.
    pub fn get_user(&self, name: &str) -> Result<serde_json::Value, IamError> {
        let st = lock(&self.inner.state);
        st.users
            .get(name)
            .map(user_json)
            .ok_or_else(|| Self::no_user(name))
    }

    /// ListUsers.
    pub fn list_users(&self) -> Vec<serde_json::Value> {
        lock(&self.inner.state)
            .users
            .values()
            .map(user_json)
            .collect()
    }

    /// DeleteUser: like IAM, only a user without keys, tokens and policies.
    pub fn delete_user(&self, name: &str) -> Result<(), IamError> {
        if name == NODE_USER {
            return Err(IamError::DeleteConflict(format!(
                "{NODE_USER} is the node credential of this machine's agents and proxies"
            )));
        }
        self.update(|st| {
            let u = st.users.get(name).ok_or_else(|| Self::no_user(name))?;
            let has_keys = st.keys.values().any(|k| k.user == name);
            let has_tokens = st
                .tokens
                .values()
                .any(|t| t.user == name && t.expires.is_none());
            if has_keys || has_tokens || !u.attached.is_empty() || !u.inline.is_empty() {
                return Err(IamError::DeleteConflict(format!(
                    "Cannot delete entity, must delete access keys, service specific credentials and policies first (user {name})."
                )));
            }
            st.tokens.retain(|_, t| t.user != name);
            st.users.remove(name);
            Ok(())
        })
    }

    // ---- policies ----

    /// AttachUserPolicy with a built-in managed policy ARN.
    pub fn attach_user_policy(&self, user: &str, arn: &str) -> Result<(), IamError> {
        if policy::builtin(arn).is_none() || !arn.starts_with(policy::BUILTIN_PREFIX) {
            return Err(IamError::NoSuchEntity(format!(
                "Policy {arn} does not exist or is not attachable (berth's managed policies: {})",
                policy::BUILTINS
                    .iter()
                    .map(|(n, _, _)| format!("{}{n}", policy::BUILTIN_PREFIX))
                    .collect::<Vec<_>>()
                    .join(", ")
            )));
        }
        self.update(|st| {
            let u = st.users.get_mut(user).ok_or_else(|| Self::no_user(user))?;
            if !u.attached.iter().any(|a| a == arn) {
                u.attached.push(arn.to_string());
            }
            Ok(())
        })
    }

    /// DetachUserPolicy.
    pub fn detach_user_policy(&self, user: &str, arn: &str) -> Result<(), IamError> {
        self.update(|st| {
            let u = st.users.get_mut(user).ok_or_else(|| Self::no_user(user))?;
            let before = u.attached.len();
            u.attached.retain(|a| a != arn);
            if u.attached.len() == before {
                return Err(IamError::NoSuchEntity(format!(
                    "Policy {arn} was not found attached to user {user}."
                )));
            }
            Ok(())
        })
    }

    /// ListAttachedUserPolicies: ARNs.
    pub fn attached_policies(&self, user: &str) -> Result<Vec<String>, IamError> {
        let st = lock(&self.inner.state);
        let u = st.users.get(user).ok_or_else(|| Self::no_user(user))?;
        Ok(u.attached.clone())
    }

    /// PutUserPolicy (an inline policy), validated first.
    pub fn put_user_policy(&self, user: &str, name: &str, document: &str) -> Result<(), IamError> {
        if name.is_empty() || name.len() > 128 {
            return Err(IamError::Validation(
                "PolicyName: expected 1-128 characters".into(),
            ));
        }
        policy::parse(document).map_err(IamError::MalformedPolicyDocument)?;
        self.update(|st| {
            let u = st.users.get_mut(user).ok_or_else(|| Self::no_user(user))?;
            u.inline.insert(name.to_string(), document.to_string());
            Ok(())
        })
    }

    /// GetUserPolicy: the document.
    pub fn get_user_policy(&self, user: &str, name: &str) -> Result<String, IamError> {
        let st = lock(&self.inner.state);
        let u = st.users.get(user).ok_or_else(|| Self::no_user(user))?;
        u.inline.get(name).cloned().ok_or_else(|| {
            IamError::NoSuchEntity(format!("The user policy with name {name} cannot be found."))
        })
    }

    /// ListUserPolicies: inline policy names.
    pub fn user_policy_names(&self, user: &str) -> Result<Vec<String>, IamError> {
        let st = lock(&self.inner.state);
        let u = st.users.get(user).ok_or_else(|| Self::no_user(user))?;
        Ok(u.inline.keys().cloned().collect())
    }

    /// DeleteUserPolicy.
    pub fn delete_user_policy(&self, user: &str, name: &str) -> Result<(), IamError> {
        self.update(|st| {
            let u = st.users.get_mut(user).ok_or_else(|| Self::no_user(user))?;
            u.inline.remove(name).map(|_| ()).ok_or_else(|| {
                IamError::NoSuchEntity(format!("The user policy with name {name} cannot be found."))
            })
        })
    }

    // ---- access keys ----

    /// CreateAccessKey: (id, secret). The secret is shown only here.
    pub fn create_access_key(&self, user: &str) -> Result<(String, String, f64), IamError> {
        let id = format!("BKIA{}", random_string(16, UPPER));
        let secret = random_string(40, SECRET_CHARS);
        let sealed = self
            .inner
            .secrets
            .seal_with_master(secret.as_bytes(), &key_aad(&id))
            .map_err(|e| IamError::Internal(e.to_string()))?;
        let created = now();
        self.update(|st| {
            if !st.users.contains_key(user) {
                return Err(Self::no_user(user));
            }
            if st.keys.values().filter(|k| k.user == user).count() >= 2 {
                return Err(IamError::LimitExceeded(format!(
                    "Cannot exceed quota for AccessKeysPerUser: 2 (user {user}); delete one first"
                )));
            }
            st.keys.insert(
                id.clone(),
                AccessKey {
                    id: id.clone(),
                    user: user.to_string(),
                    status: "Active".into(),
                    created,
                    secret: sealed,
                    last_used: None,
                },
            );
            Ok(())
        })?;
        Ok((id, secret, created))
    }

    /// ListAccessKeys: (id, status, created) of a user's keys.
    pub fn list_access_keys(&self, user: &str) -> Result<Vec<(String, String, f64)>, IamError> {
        let st = lock(&self.inner.state);
        if !st.users.contains_key(user) {
            return Err(Self::no_user(user));
        }
        Ok(st
            .keys
            .values()
            .filter(|k| k.user == user)
            .map(|k| (k.id.clone(), k.status.clone(), k.created))
            .collect())
    }

    /// The user owning an access key or a token id.
    pub fn owner_of(&self, credential_id: &str) -> Option<String> {
        let st = lock(&self.inner.state);
        st.keys
            .get(credential_id)
            .map(|k| k.user.clone())
            .or_else(|| st.tokens.get(credential_id).map(|t| t.user.clone()))
    }

    /// UpdateAccessKey: Active or Inactive.
    pub fn update_access_key(&self, id: &str, status: &str) -> Result<(), IamError> {
        if status != "Active" && status != "Inactive" {
            return Err(IamError::Validation(format!(
                "Status: expected Active or Inactive, got {status:?}"
            )));
        }
        self.update(|st| {
            let k = st.keys.get_mut(id).ok_or_else(|| {
                IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found"))
            })?;
            k.status = status.to_string();
            Ok(())
        })
    }

    /// DeleteAccessKey.
    pub fn delete_access_key(&self, id: &str) -> Result<(), IamError> {
        self.update(|st| {
            st.keys.remove(id).map(|_| ()).ok_or_else(|| {
                IamError::NoSuchEntity(format!("The Access Key with id {id} cannot be found"))
            })
        })
    }

    // ---- tokens ----

    fn add_token(&self, user: &str, token: &str, expires: Option<f64>) -> Result<String, IamError> {
        let id = format!("ACCA{}", random_string(17, UPPER));
        let hash = sigv4::sha256_hex(token.as_bytes());
        let t = now();
        self.update(|st| {
            if !st.users.contains_key(user) {
                return Err(Self::no_user(user));
            }
            // Expired registry tokens go when new ones come.
            st.tokens.retain(|_, tok| tok.expires.is_none_or(|e| e > t));
            st.tokens.insert(
                id.clone(),
                Token {
                    id: id.clone(),
                    user: user.to_string(),
                    hash,
                    status: "Active".into(),
                    created: t,
                    service: if expires.is_some() {
                        "ecr".into()
                    } else {
                        TOKEN_SERVICE.into()
                    },
                    expires,
                },
            );
            Ok(())
        })?;
        Ok(id)
    }

    /// CreateServiceSpecificCredential (service `berth`): (id, token, created).
    pub fn create_token(&self, user: &str) -> Result<(String, String, f64), IamError> {
        let token = new_token();
        let id = self.add_token(user, &token, None)?;
        Ok((id, token, now()))
    }

    /// A registry token for `user` (ECR GetAuthorizationToken), valid 12 hours: (token, expiry).
    pub fn registry_token(&self, user: &str) -> Result<(String, f64), IamError> {
        let token = new_token();
        let expires = now() + REGISTRY_TOKEN_SECONDS;
        self.add_token(user, &token, Some(expires))?;
        Ok((token, expires))
    }

    /// ListServiceSpecificCredentials: (id, user, status, created) of long-lived tokens.
    pub fn list_tokens(&self, user: Option<&str>) -> Vec<(String, String, String, f64)> {
        let st = lock(&self.inner.state);
        st.tokens
            .values()
            .filter(|t| t.expires.is_none() && user.is_none_or(|u| t.user == u))
            .map(|t| (t.id.clone(), t.user.clone(), t.status.clone(), t.created))
            .collect()
    }

    fn no_token(id: &str) -> IamError {
        IamError::NoSuchEntity(format!(
            "No such entity: service specific credential {id} cannot be found"
        ))
    }

    /// ResetServiceSpecificCredential: a new token value under the same id.
    pub fn reset_token(&self, id: &str) -> Result<(String, String), IamError> {
        let token = new_token();
        let hash = sigv4::sha256_hex(token.as_bytes());
        let user = self.update(|st| {
            let t = st.tokens.get_mut(id).ok_or_else(|| Self::no_token(id))?;
            t.hash = hash;
            Ok(t.user.clone())
        })?;
        Ok((user, token))
    }

    /// UpdateServiceSpecificCredential: Active or Inactive.
    pub fn update_token(&self, id: &str, status: &str) -> Result<(), IamError> {
        if status != "Active" && status != "Inactive" {
            return Err(IamError::Validation(format!(
                "Status: expected Active or Inactive, got {status:?}"
            )));
        }
        self.update(|st| {
            let t = st.tokens.get_mut(id).ok_or_else(|| Self::no_token(id))?;
            t.status = status.to_string();
            Ok(())
        })
    }

    /// DeleteServiceSpecificCredential.
    pub fn delete_token(&self, id: &str) -> Result<(), IamError> {
        self.update(|st| {
            st.tokens
                .remove(id)
                .map(|_| ())
                .ok_or_else(|| Self::no_token(id))
        })
    }

    // ---- authentication ----

    fn principal(&self, st: &State, user: &str, credential_id: &str) -> Principal {
        Principal {
            user: user.to_string(),
            arn: st
                .users
                .get(user)
                .map(|u| u.arn.clone())
                .unwrap_or_else(|| self.user_arn(user)),
            credential_id: credential_id.to_string(),
        }
    }

    /// A bearer token (or registry token).
    pub fn authenticate_token(&self, token: &str, t: f64) -> Result<Principal, AuthError> {
        let hash = sigv4::sha256_hex(token.as_bytes());
        let st = lock(&self.inner.state);
        let found = st.tokens.values().find(|tok| {
            use subtle::ConstantTimeEq;
            bool::from(tok.hash.as_bytes().ct_eq(hash.as_bytes()))
        });
        match found {
            Some(tok)
                if tok.status == "Active"
                    && tok.expires.is_none_or(|e| e > t)
                    && st.users.contains_key(&tok.user) =>
            {
                Ok(self.principal(&st, &tok.user, &tok.id))
            }
            _ => Err(AuthError::BadToken),
        }
    }

    fn key_secret(&self, id: &str) -> Result<(String, zeroize::Zeroizing<Vec<u8>>), AuthError> {
        let (user, status, sealed) = {
            let st = lock(&self.inner.state);
            let k = st
                .keys
                .get(id)
                .ok_or_else(|| AuthError::UnknownKey(id.to_string()))?;
            (k.user.clone(), k.status.clone(), k.secret.clone())
        };
        if status != "Active" {
            return Err(AuthError::Inactive(id.to_string()));
        }
        let secret = self
            .inner
            .secrets
            .open_with_master(&sealed, &key_aad(id))
            .map_err(|_| AuthError::UnknownKey(id.to_string()))?;
        Ok((user, secret))
    }

    /// A SigV4-signed request.
    pub fn authenticate_sigv4(
        &self,
        auth: &sigv4::Authorization,
        req: &sigv4::Request<'_>,
        t: f64,
    ) -> Result<Principal, AuthError> {
        let (user, secret) = self.key_secret(&auth.access_key_id)?;
        let secret = std::str::from_utf8(&secret).map_err(|_| sigv4::SigError::Mismatch)?;
        sigv4::verify(secret, auth, req, t)?;
        let st = lock(&self.inner.state);
        Ok(self.principal(&st, &user, &auth.access_key_id))
    }

    /// HTTP Basic (registry clients): user `AWS` (or anything) with a token as the password, or
    /// an access key id with its secret.
    pub fn authenticate_basic(
        &self,
        user: &str,
        password: &str,
        t: f64,
    ) -> Result<Principal, AuthError> {
        if user.starts_with("BKIA") {
            let (owner, secret) = self.key_secret(user)?;
            use subtle::ConstantTimeEq;
            if bool::from(secret.as_slice().ct_eq(password.as_bytes())) {
                let st = lock(&self.inner.state);
                return Ok(self.principal(&st, &owner, user));
            }
            return Err(AuthError::Signature(sigv4::SigError::Mismatch));
        }
        self.authenticate_token(password, t)
    }

    // ---- authorisation ----

    /// Evaluates the user's policies (attached and inline) for `action` on `resource`.
    pub fn authorize(&self, p: &Principal, action: &str, resource: &str) -> Decision {
        let (builtins, inline): (Vec<&'static PolicyDocument>, Vec<PolicyDocument>) = {
            let st = lock(&self.inner.state);
            let Some(u) = st.users.get(&p.user) else {
                return Decision::ImplicitDeny;
            };
            (
                u.attached
                    .iter()
                    .filter_map(|a| policy::builtin_document(a))
                    .collect(),
                // Inline policies were validated when put; only they are parsed here.
                u.inline
                    .values()
                    .filter_map(|d| policy::parse(d).ok())
                    .collect(),
            )
        };
        policy::evaluate(builtins.into_iter().chain(inline.iter()), action, resource)
    }

    /// Appends to the audit log.
    pub fn record(&self, event: &audit::Event) {
        let _guard = lock(&self.inner.audit);
        if let Err(e) = audit::append(&self.inner.dir, event) {
            tracing::error!(error = %e, "cannot append to the audit log");
        }
    }

    /// CloudTrail's LookupEvents over the audit log.
    pub fn lookup_events(&self, input: &serde_json::Value) -> Result<serde_json::Value, IamError> {
        audit::lookup(&self.inner.dir, input)
    }
}

fn user_json(u: &User) -> serde_json::Value {
    serde_json::json!({
        "Path": "/",
        "UserName": u.name,
        "UserId": u.id,
        "Arn": u.arn,
        "CreateDate": iso8601(u.created),
    })
}

/// Seconds since the epoch.
pub fn now() -> f64 {
    berth_secrets::now()
}

/// `2026-11-22T03:04:05Z`.
pub fn iso8601(t: f64) -> String {
    chrono::DateTime::from_timestamp(t as i64, 0)
        .map(|d| d.format("%Y-%m-%dT%H:%M:%SZ").to_string())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests;
