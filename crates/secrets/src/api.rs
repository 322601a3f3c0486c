//! The Secrets Manager operations over JSON input and output (awsJson 1.1 shapes). Only
//! GetSecretValue returns a value; errors never echo one.

use crate::error::SecretsError;
use crate::store::{self, SecretRecord, VersionRecord};
use crate::{now, Secrets, AWSCURRENT, AWSPENDING};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use rand::Rng;
use serde_json::{json, Value};
use zeroize::Zeroizing;

/// Dispatches one operation.
pub(crate) fn call(
    s: &Secrets,
    op: &str,
    input: &Value,
    actor: &str,
) -> Result<Value, SecretsError> {
    match op {
        "CreateSecret" => create_secret(s, input),
        "GetSecretValue" => get_secret_value(s, input, actor),
        "PutSecretValue" => put_secret_value(s, input),
        "UpdateSecret" => update_secret(s, input),
        "DescribeSecret" => describe_secret(s, input),
        "ListSecrets" => list_secrets(s, input),
        "ListSecretVersionIds" => list_secret_version_ids(s, input),
        "DeleteSecret" => delete_secret(s, input),
        "RestoreSecret" => restore_secret(s, input),
        "RotateSecret" => crate::rotation::rotate_secret(s, input),
        "CancelRotateSecret" => crate::rotation::cancel_rotate_secret(s, input),
        "UpdateSecretVersionStage" => update_secret_version_stage(s, input),
        "TagResource" => tag_resource(s, input),
        "UntagResource" => untag_resource(s, input),
        "GetRandomPassword" => get_random_password(input),
        other => Err(SecretsError::UnknownOperation(other.to_string())),
    }
}

pub(crate) fn str_field<'a>(input: &'a Value, key: &str) -> Option<&'a str> {
    input.get(key).and_then(Value::as_str)
}

pub(crate) fn secret_id(input: &Value) -> Result<&str, SecretsError> {
    str_field(input, "SecretId")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            SecretsError::InvalidParameter("SecretId: expected a secret name or ARN".into())
        })
}

/// SecretString or SecretBinary (base64), if given; both is an error.
fn value_input(input: &Value) -> Result<Option<(bool, Zeroizing<Vec<u8>>)>, SecretsError> {
    let string = input.get("SecretString").filter(|v| !v.is_null());
    let binary = input.get("SecretBinary").filter(|v| !v.is_null());
    match (string, binary) {
        (Some(_), Some(_)) => Err(SecretsError::InvalidParameter(
            "You can't specify both a binary secret value and a string secret value in the same secret.".into(),
        )),
        (Some(v), None) => {
            let s = v.as_str().ok_or_else(|| SecretsError::InvalidParameter("SecretString: expected a string".into()))?;
            if s.len() > 65536 {
                return Err(SecretsError::InvalidParameter(format!("SecretString: expected at most 65536 bytes, found {}", s.len())));
            }
            Ok(Some((false, Zeroizing::new(s.as_bytes().to_vec()))))
        }
        (None, Some(v)) => {
            let bytes = v
                .as_str()
                .and_then(|b| B64.decode(b).ok())
                .ok_or_else(|| SecretsError::InvalidParameter("SecretBinary: expected base64".into()))?;
            Ok(Some((true, Zeroizing::new(bytes))))
        }
        (None, None) => Ok(None),
    }
}

fn validate_name(name: Option<&str>, errors: &mut Vec<String>) {
    match name {
        None | Some("") => errors.push("Name: expected a secret name, found none".into()),
        Some(n) if n.len() > 512 => errors.push(format!(
            "Name: expected at most 512 characters, found {}",
            n.len()
        )),
        Some(n)
            if !n
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "/_+=.@-".contains(c)) =>
        {
            errors.push(format!(
                "Name: expected letters, digits and /_+=.@- only, found {n:?}"
            ))
        }
        Some(n) if n.starts_with("arn:") => {
            errors.push("Name: expected a name, found an ARN".into())
        }
        Some(n) if n.split('/').any(|s| s == "." || s == "..") => errors.push(format!(
            "Name: expected a name without `.` or `..` path segments, found {n:?}"
        )),
        _ => {}
    }
}

fn token(input: &Value) -> Result<String, SecretsError> {
    match str_field(input, "ClientRequestToken") {
        None => Ok(uuid::Uuid::new_v4().to_string()),
        Some(t)
            if (1..=64).contains(&t.len())
                && t.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') =>
        {
            Ok(t.to_string())
        }
        Some(t) => Err(SecretsError::InvalidParameter(format!(
            "ClientRequestToken: expected 1 to 64 letters, digits or hyphens, found {t:?}"
        ))),
    }
}

fn tags_input(input: &Value, errors: &mut Vec<String>) -> Vec<Value> {
    let mut out = Vec::new();
    if let Some(tags) = input.get("Tags").and_then(Value::as_array) {
        for (i, t) in tags.iter().enumerate() {
            match (str_field(t, "Key"), str_field(t, "Value")) {
                (Some(k), v) if !k.is_empty() => {
                    out.push(json!({"Key": k, "Value": v.unwrap_or("")}))
                }
                _ => errors.push(format!("Tags[{i}].Key: expected a non-empty string")),
            }
        }
    }
    out
}

fn random_suffix() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::thread_rng();
    (0..6)
        .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
        .collect()
}

fn fail_if_any(errors: Vec<String>) -> Result<(), SecretsError> {
    if errors.is_empty() {
        Ok(())
    } else {
        Err(SecretsError::InvalidParameter(errors.join("; ")))
    }
}

fn create_secret(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let mut errors = Vec::new();
    let name = str_field(input, "Name");
    validate_name(name, &mut errors);
    let description = str_field(input, "Description").map(str::to_string);
    if description.as_ref().is_some_and(|d| d.len() > 2048) {
        errors.push("Description: expected at most 2048 characters".into());
    }
    let tags = tags_input(input, &mut errors);
    let value = match value_input(input) {
        Ok(v) => v,
        Err(e) => {
            errors.push(e.to_string());
            None
        }
    };
    let vid = match token(input) {
        Ok(t) => t,
        Err(e) => {
            errors.push(e.to_string());
            String::new()
        }
    };
    fail_if_any(errors)?;
    let name = name.unwrap_or_default().to_string();
    let mut records = s.records();
    if let Some(existing) = records.values().find(|r| r.name == name) {
        return Err(if existing.deleted.is_some() {
            SecretsError::InvalidRequest(
                "You can't create this secret because a secret with this name is already scheduled for deletion.".into(),
            )
        } else {
            SecretsError::Exists(format!(
                "The operation failed because the secret {name} already exists."
            ))
        });
    }
    let arn = format!(
        "arn:aws:secretsmanager:{}:{}:secret:{name}-{}",
        s.inner.region,
        s.inner.account,
        random_suffix()
    );
    let (_, wrapped) = crate::crypto::new_data_key(&s.inner.master, &arn)?;
    let t = now();
    let mut rec = SecretRecord {
        arn: arn.clone(),
        name: name.clone(),
        description,
        kms_key_id: str_field(input, "KmsKeyId").map(str::to_string),
        tags,
        created: t,
        last_changed: t,
        last_accessed: None,
        deleted: None,
        deletion: None,
        rotation_enabled: false,
        rotation_lambda: None,
        rotation_rules: None,
        last_rotated: None,
        next_rotation: None,
        data_key: wrapped,
        versions: Default::default(),
    };
    let mut out = json!({"ARN": arn, "Name": name});
    if let Some((binary, bytes)) = value {
        let sealed = s.encrypt(&rec, &vid, &bytes)?;
        rec.versions.insert(
            vid.clone(),
            VersionRecord {
                stages: vec![AWSCURRENT.into()],
                created: t,
                binary,
                value: sealed,
            },
        );
        out["VersionId"] = json!(vid);
    }
    store::save(&s.inner.dir, &rec)?;
    records.insert(arn, rec);
    Ok(out)
}

fn get_secret_value(s: &Secrets, input: &Value, actor: &str) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let (arn, vid, plain) = s.read_value(
        id,
        str_field(input, "VersionId"),
        str_field(input, "VersionStage"),
    )?;
    s.audit(actor, &arn, &vid, "GetSecretValue");
    let records = s.records();
    let rec = records.get(&arn).ok_or_else(SecretsError::not_found)?;
    let v = rec.versions.get(&vid).ok_or_else(SecretsError::not_found)?;
    let mut out = json!({
        "ARN": arn,
        "Name": rec.name,
        "VersionId": vid,
        "VersionStages": v.stages,
        "CreatedDate": v.created,
    });
    if plain.binary {
        out["SecretBinary"] = json!(B64.encode(plain.bytes.as_slice()));
    } else {
        out["SecretString"] = json!(String::from_utf8_lossy(&plain.bytes));
    }
    Ok(out)
}

/// Adds version `vid` with `value` and `stages` (AWSCURRENT when none); idempotent for the
/// same token and value.
fn add_version(
    s: &Secrets,
    arn: &str,
    vid: &str,
    value: (bool, Zeroizing<Vec<u8>>),
    stages: Vec<String>,
) -> Result<Vec<String>, SecretsError> {
    store::update(s, arn, |rec| {
        if rec.deleted.is_some() {
            return Err(SecretsError::deleted());
        }
        if rec.versions.contains_key(vid) {
            let old = s.decrypt(rec, vid)?;
            if old.binary == value.0 && old.bytes.as_slice() == value.1.as_slice() {
                return Ok(rec
                    .versions
                    .get(vid)
                    .map(|v| v.stages.clone())
                    .unwrap_or_default());
            }
            return Err(SecretsError::Exists(format!(
                "You can't modify an existing version {vid}: the ClientRequestToken was already used with another value."
            )));
        }
        let sealed = s.encrypt(rec, vid, &value.1)?;
        let t = now();
        rec.versions.insert(
            vid.to_string(),
            VersionRecord {
                stages: Vec::new(),
                created: t,
                binary: value.0,
                value: sealed,
            },
        );
        let stages = if stages.is_empty() {
            vec![AWSCURRENT.to_string()]
        } else {
            stages
        };
        rec.move_stages(vid, &stages);
        rec.last_changed = t;
        Ok(rec
            .versions
            .get(vid)
            .map(|v| v.stages.clone())
            .unwrap_or_default())
    })
}

pub(crate) fn add_version_from_rotation(
    s: &Secrets,
    arn: &str,
    vid: &str,
    value: Zeroizing<Vec<u8>>,
) -> Result<(), SecretsError> {
    add_version(s, arn, vid, (false, value), vec![AWSPENDING.into()]).map(|_| ())
}

fn put_secret_value(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let value = value_input(input)?.ok_or_else(|| {
        SecretsError::InvalidParameter("SecretString or SecretBinary: expected one of them".into())
    })?;
    let vid = token(input)?;
    let stages: Vec<String> = input
        .get("VersionStages")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let arn = store::find(&s.records(), id)?;
    let stages = add_version(s, &arn, &vid, value, stages)?;
    let name = s
        .records()
        .get(&arn)
        .map(|r| r.name.clone())
        .unwrap_or_default();
    Ok(json!({"ARN": arn, "Name": name, "VersionId": vid, "VersionStages": stages}))
}

fn update_secret(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let value = value_input(input)?;
    let arn = store::find(&s.records(), id)?;
    let description = str_field(input, "Description").map(str::to_string);
    let kms = str_field(input, "KmsKeyId").map(str::to_string);
    let name = store::update(s, &arn, |rec| {
        if rec.deleted.is_some() {
            return Err(SecretsError::deleted());
        }
        if description.is_some() {
            rec.description = description;
        }
        if kms.is_some() {
            rec.kms_key_id = kms;
        }
        rec.last_changed = now();
        Ok(rec.name.clone())
    })?;
    let mut out = json!({"ARN": arn, "Name": name});
    if let Some(v) = value {
        let vid = token(input)?;
        add_version(s, &arn, &vid, v, Vec::new())?;
        out["VersionId"] = json!(vid);
    }
    Ok(out)
}

fn stages_map(rec: &SecretRecord) -> Value {
    Value::Object(
        rec.versions
            .iter()
            .map(|(id, v)| (id.clone(), json!(v.stages)))
            .collect(),
    )
}

fn describe(rec: &SecretRecord, versions_key: &str) -> Value {
    json!({
        "ARN": rec.arn,
        "Name": rec.name,
        "Description": rec.description,
        "KmsKeyId": rec.kms_key_id,
        "RotationEnabled": rec.rotation_enabled,
        "RotationLambdaARN": rec.rotation_lambda,
        "RotationRules": rec.rotation_rules,
        "LastRotatedDate": rec.last_rotated,
        "LastChangedDate": rec.last_changed,
        "LastAccessedDate": rec.last_accessed,
        "DeletedDate": rec.deleted,
        "NextRotationDate": rec.next_rotation,
        "Tags": if rec.tags.is_empty() { Value::Null } else { json!(rec.tags) },
        versions_key: stages_map(rec),
        "CreatedDate": rec.created,
    })
}

fn describe_secret(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let records = s.records();
    let arn = store::find(&records, id)?;
    let rec = records.get(&arn).ok_or_else(SecretsError::not_found)?;
    Ok(describe(rec, "VersionIdsToStages"))
}

fn filter_matches(rec: &SecretRecord, key: &str, values: &[&str]) -> bool {
    values.iter().any(|v| {
        let (neg, v) = match v.strip_prefix('!') {
            Some(rest) => (true, rest),
            None => (false, *v),
        };
        let tag_keys = || rec.tags.iter().filter_map(|t| str_field(t, "Key"));
        let tag_values = || rec.tags.iter().filter_map(|t| str_field(t, "Value"));
        let hit = match key {
            "name" => rec.name.starts_with(v),
            "description" => rec.description.as_deref().is_some_and(|d| d.starts_with(v)),
            "tag-key" => tag_keys().any(|k| k.starts_with(v)),
            "tag-value" => tag_values().any(|k| k.starts_with(v)),
            "all" => {
                rec.name.starts_with(v)
                    || rec.description.as_deref().is_some_and(|d| d.starts_with(v))
                    || tag_keys().any(|k| k.starts_with(v))
                    || tag_values().any(|k| k.starts_with(v))
            }
            _ => false,
        };
        hit != neg
    })
}

fn list_secrets(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let mut filters: Vec<(String, Vec<&str>)> = Vec::new();
    let mut errors = Vec::new();
    if let Some(fs) = input.get("Filters").and_then(Value::as_array) {
        for (i, f) in fs.iter().enumerate() {
            let key = str_field(f, "Key").unwrap_or_default();
            if ![
                "name",
                "description",
                "tag-key",
                "tag-value",
                "all",
                "primary-region",
                "owning-service",
            ]
            .contains(&key)
            {
                errors.push(format!("Filters[{i}].Key: expected name, description, tag-key, tag-value or all, found {key:?}"));
            }
            let values = f
                .get("Values")
                .and_then(Value::as_array)
                .map(|a| a.iter().filter_map(Value::as_str).collect())
                .unwrap_or_default();
            filters.push((key.to_string(), values));
        }
    }
    let max = input
        .get("MaxResults")
        .and_then(Value::as_u64)
        .unwrap_or(100);
    if !(1..=100).contains(&max) {
        errors.push(format!("MaxResults: expected 1 to 100, found {max}"));
    }
    fail_if_any(errors)?;
    let include_deleted = input
        .get("IncludePlannedDeletion")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let start: usize = str_field(input, "NextToken")
        .and_then(|t| t.parse().ok())
        .unwrap_or(0);
    let records = s.records();
    let mut matching: Vec<&SecretRecord> = records
        .values()
        .filter(|r| include_deleted || r.deleted.is_none())
        .filter(|r| {
            filters.iter().all(|(k, v)| {
                matches!(k.as_str(), "primary-region" | "owning-service") || filter_matches(r, k, v)
            })
        })
        .collect();
    matching.sort_by(|a, b| a.created.total_cmp(&b.created).then(a.name.cmp(&b.name)));
    if str_field(input, "SortOrder") == Some("desc") {
        matching.reverse();
    }
    let page: Vec<Value> = matching
        .iter()
        .skip(start)
        .take(max as usize)
        .map(|r| describe(r, "SecretVersionsToStages"))
        .collect();
    let next = start + page.len();
    let mut out = json!({"SecretList": page});
    if next < matching.len() {
        out["NextToken"] = json!(next.to_string());
    }
    Ok(out)
}

fn list_secret_version_ids(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let records = s.records();
    let arn = store::find(&records, id)?;
    let rec = records.get(&arn).ok_or_else(SecretsError::not_found)?;
    let versions: Vec<Value> = rec
        .versions
        .iter()
        .map(
            |(id, v)| json!({"VersionId": id, "VersionStages": v.stages, "CreatedDate": v.created}),
        )
        .collect();
    Ok(json!({"ARN": arn, "Name": rec.name, "Versions": versions}))
}

fn delete_secret(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let force = input
        .get("ForceDeleteWithoutRecovery")
        .and_then(Value::as_bool)
        .unwrap_or(false);
    let window = input.get("RecoveryWindowInDays").filter(|v| !v.is_null());
    if force && window.is_some() {
        return Err(SecretsError::InvalidParameter(
            "You can't use ForceDeleteWithoutRecovery in conjunction with RecoveryWindowInDays."
                .into(),
        ));
    }
    let days = match window {
        None => 30,
        Some(v) => match v.as_i64() {
            Some(d) if (7..=30).contains(&d) => d,
            _ => {
                return Err(SecretsError::InvalidParameter(format!(
                    "RecoveryWindowInDays: expected 7 to 30, found {v}"
                )))
            }
        },
    };
    let t = now();
    let arn = store::find(&s.records(), id)?;
    if force {
        let mut records = s.records();
        let name = records
            .get(&arn)
            .map(|r| r.name.clone())
            .unwrap_or_default();
        store::remove(&s.inner.dir, &arn)?;
        records.remove(&arn);
        return Ok(json!({"ARN": arn, "Name": name, "DeletionDate": t}));
    }
    let (name, deletion) = store::update(s, &arn, |rec| {
        if rec.deleted.is_some() {
            return Err(SecretsError::deleted());
        }
        rec.deleted = Some(t);
        rec.deletion = Some(t + days as f64 * 86400.0);
        Ok((rec.name.clone(), rec.deletion))
    })?;
    Ok(json!({"ARN": arn, "Name": name, "DeletionDate": deletion}))
}

fn restore_secret(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let arn = store::find(&s.records(), id)?;
    let name = store::update(s, &arn, |rec| {
        rec.deleted = None;
        rec.deletion = None;
        Ok(rec.name.clone())
    })?;
    Ok(json!({"ARN": arn, "Name": name}))
}

fn update_secret_version_stage(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let stage = str_field(input, "VersionStage")
        .filter(|s| !s.is_empty())
        .ok_or_else(|| {
            SecretsError::InvalidParameter("VersionStage: expected a staging label".into())
        })?
        .to_string();
    let remove_from = str_field(input, "RemoveFromVersionId").map(str::to_string);
    let move_to = str_field(input, "MoveToVersionId").map(str::to_string);
    let arn = store::find(&s.records(), id)?;
    let name = store::update(s, &arn, |rec| {
        if rec.deleted.is_some() {
            return Err(SecretsError::deleted());
        }
        let holder = rec.version_with(&stage);
        if holder.is_some() && holder != remove_from && holder != move_to {
            return Err(SecretsError::InvalidParameter(format!(
                "RemoveFromVersionId: the label {stage} is attached to another version; name it to move the label"
            )));
        }
        match &move_to {
            Some(to) => {
                if !rec.versions.contains_key(to) {
                    return Err(SecretsError::NotFound(format!(" version {to:?}.")));
                }
                rec.move_stages(to, std::slice::from_ref(&stage));
            }
            None => {
                if let Some(v) = remove_from.as_ref().and_then(|id| rec.versions.get_mut(id)) {
                    if stage == AWSCURRENT {
                        return Err(SecretsError::InvalidParameter(
                            "You can only remove AWSCURRENT by moving it to another version (MoveToVersionId).".into(),
                        ));
                    }
                    v.stages.retain(|s| *s != stage);
                }
                rec.versions.retain(|_, v| !v.stages.is_empty());
            }
        }
        rec.last_changed = now();
        Ok(rec.name.clone())
    })?;
    Ok(json!({"ARN": arn, "Name": name}))
}

fn tag_resource(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let mut errors = Vec::new();
    let tags = tags_input(input, &mut errors);
    fail_if_any(errors)?;
    let arn = store::find(&s.records(), id)?;
    store::update(s, &arn, |rec| {
        for t in tags {
            rec.tags.retain(|old| old.get("Key") != t.get("Key"));
            rec.tags.push(t);
        }
        Ok(())
    })?;
    Ok(json!({}))
}

fn untag_resource(s: &Secrets, input: &Value) -> Result<Value, SecretsError> {
    let id = secret_id(input)?;
    let keys: Vec<String> = input
        .get("TagKeys")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let arn = store::find(&s.records(), id)?;
    store::update(s, &arn, |rec| {
        rec.tags
            .retain(|t| !str_field(t, "Key").is_some_and(|k| keys.iter().any(|x| x == k)));
        Ok(())
    })?;
    Ok(json!({}))
}

fn get_random_password(input: &Value) -> Result<Value, SecretsError> {
    let len = input
        .get("PasswordLength")
        .and_then(Value::as_u64)
        .unwrap_or(32);
    if !(1..=4096).contains(&len) {
        return Err(SecretsError::InvalidParameter(format!(
            "PasswordLength: expected 1 to 4096, found {len}"
        )));
    }
    let flag = |k: &str| input.get(k).and_then(Value::as_bool).unwrap_or(false);
    let exclude = str_field(input, "ExcludeCharacters").unwrap_or_default();
    let mut pool: Vec<char> = Vec::new();
    if !flag("ExcludeLowercase") {
        pool.extend('a'..='z');
    }
    if !flag("ExcludeUppercase") {
        pool.extend('A'..='Z');
    }
    if !flag("ExcludeNumbers") {
        pool.extend('0'..='9');
    }
    if !flag("ExcludePunctuation") {
        pool.extend("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~".chars());
    }
    if flag("IncludeSpace") {
        pool.push(' ');
    }
    pool.retain(|c| !exclude.contains(*c));
    if pool.is_empty() {
        return Err(SecretsError::InvalidParameter(
            "the exclusions leave no characters to choose from".into(),
        ));
    }
    let mut rng = rand::rngs::OsRng;
    let pw: String = (0..len)
        .map(|_| pool[rng.gen_range(0..pool.len())])
        .collect();
    Ok(json!({"RandomPassword": pw}))
}
