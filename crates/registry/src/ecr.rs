//! ECR's awsJson 1.1 operations (target prefix `AmazonEC2ContainerRegistry_V20150921`) over a
//! [`Registry`]: repositories and their settings, images, lifecycle policies and previews, and
//! authorization tokens. The caller (the server's awsJson edge) maps [`EcrError::code`] to the
//! `__type` of the error body.

use crate::digest::Digest;
use crate::lifecycle;
use crate::reference::check_repository_name;
use crate::registry::{LifecyclePreview, PreviewResult, Repository, TagMutability};
use crate::{Registry, RegistryError};
use base64::Engine as _;
use serde::Deserialize;
use serde_json::{json, Value};

/// An ECR API error: an AWS error code and a message.
#[derive(Debug, thiserror::Error)]
pub enum EcrError {
    #[error(
        "The repository with name '{name}' does not exist in the registry with id '{registry_id}'"
    )]
    RepositoryNotFound { name: String, registry_id: String },
    #[error(
        "The repository with name '{name}' already exists in the registry with id '{registry_id}'"
    )]
    RepositoryAlreadyExists { name: String, registry_id: String },
    #[error("The repository with name '{name}' in registry with id '{registry_id}' cannot be deleted because it still contains images")]
    RepositoryNotEmpty { name: String, registry_id: String },
    #[error("{0}")]
    ImageNotFound(String),
    #[error("{0}")]
    ImageTagAlreadyExists(String),
    #[error("Lifecycle policy does not exist for the repository with name '{name}' in the registry with id '{registry_id}'")]
    LifecyclePolicyNotFound { name: String, registry_id: String },
    #[error("There is no lifecycle policy preview for the repository with name '{name}' in the registry with id '{registry_id}'")]
    LifecyclePolicyPreviewNotFound { name: String, registry_id: String },
    #[error("{0}")]
    InvalidParameter(String),
    #[error("operation {0} is not supported by berth's ECR API")]
    UnknownOperation(String),
    #[error("{0}")]
    Server(String),
}

impl EcrError {
    /// The AWS error code (`__type`).
    pub fn code(&self) -> &'static str {
        match self {
            EcrError::RepositoryNotFound { .. } => "RepositoryNotFoundException",
            EcrError::RepositoryAlreadyExists { .. } => "RepositoryAlreadyExistsException",
            EcrError::RepositoryNotEmpty { .. } => "RepositoryNotEmptyException",
            EcrError::ImageNotFound(_) => "ImageNotFoundException",
            EcrError::ImageTagAlreadyExists(_) => "ImageTagAlreadyExistsException",
            EcrError::LifecyclePolicyNotFound { .. } => "LifecyclePolicyNotFoundException",
            EcrError::LifecyclePolicyPreviewNotFound { .. } => {
                "LifecyclePolicyPreviewNotFoundException"
            }
            EcrError::InvalidParameter(_) => "InvalidParameterException",
            EcrError::UnknownOperation(_) => "UnknownOperationException",
            EcrError::Server(_) => "ServerException",
        }
    }

    /// The HTTP status: 500 for server faults, 400 otherwise.
    pub fn status(&self) -> u16 {
        match self {
            EcrError::Server(_) => 500,
            _ => 400,
        }
    }
}

impl From<RegistryError> for EcrError {
    fn from(e: RegistryError) -> EcrError {
        match e {
            RegistryError::TagImmutable { .. } => EcrError::ImageTagAlreadyExists(e.to_string()),
            RegistryError::NameInvalid(_)
            | RegistryError::DigestParse(_)
            | RegistryError::TagInvalid(_) => EcrError::InvalidParameter(e.to_string()),
            other => EcrError::Server(other.to_string()),
        }
    }
}

/// Runs one ECR operation on `input` (the request's JSON body) and returns the response body.
pub fn call(registry: &Registry, operation: &str, input: Value) -> Result<Value, EcrError> {
    let ecr = Ecr {
        registry,
        registry_id: registry.arns().account.clone(),
    };
    let mut output = match operation {
        "CreateRepository" => ecr.create_repository(parse(input)?),
        "DescribeRepositories" => ecr.describe_repositories(parse(input)?),
        "DeleteRepository" => ecr.delete_repository(parse(input)?),
        "DescribeImages" => ecr.describe_images(parse(input)?),
        "ListImages" => ecr.list_images(parse(input)?),
        "BatchDeleteImage" => ecr.batch_delete_image(parse(input)?),
        "PutLifecyclePolicy" => ecr.put_lifecycle_policy(parse(input)?),
        "GetLifecyclePolicy" => ecr.get_lifecycle_policy(parse(input)?),
        "DeleteLifecyclePolicy" => ecr.delete_lifecycle_policy(parse(input)?),
        "StartLifecyclePolicyPreview" => ecr.start_lifecycle_policy_preview(parse(input)?),
        "GetLifecyclePolicyPreview" => ecr.get_lifecycle_policy_preview(parse(input)?),
        "PutImageTagMutability" => ecr.put_image_tag_mutability(parse(input)?),
        "PutImageScanningConfiguration" => ecr.put_image_scanning_configuration(parse(input)?),
        "GetAuthorizationToken" => Ok(ecr.get_authorization_token()),
        other => Err(EcrError::UnknownOperation(other.to_string())),
    }?;
    strip_nulls(&mut output);
    Ok(output)
}

/// Removes `null` members: AWS omits absent fields.
fn strip_nulls(v: &mut Value) {
    match v {
        Value::Object(m) => {
            m.retain(|_, x| !x.is_null());
            m.values_mut().for_each(strip_nulls);
        }
        Value::Array(a) => a.iter_mut().for_each(strip_nulls),
        _ => {}
    }
}

fn parse<T: serde::de::DeserializeOwned>(input: Value) -> Result<T, EcrError> {
    let input = if input.is_null() { json!({}) } else { input };
    serde_json::from_value(input)
        .map_err(|e| EcrError::InvalidParameter(format!("request body: {e}")))
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ScanningConfiguration {
    #[serde(default)]
    scan_on_push: bool,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct CreateRepositoryInput {
    repository_name: String,
    image_tag_mutability: Option<String>,
    image_scanning_configuration: Option<ScanningConfiguration>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RepositoryInput {
    repository_name: String,
    #[serde(default)]
    force: bool,
    lifecycle_policy_text: Option<String>,
    image_tag_mutability: Option<String>,
    image_scanning_configuration: Option<ScanningConfiguration>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PagedInput {
    repository_names: Option<Vec<String>>,
    max_results: Option<usize>,
    next_token: Option<String>,
}

#[derive(Deserialize, Clone, Debug)]
#[serde(rename_all = "camelCase")]
struct ImageId {
    image_digest: Option<String>,
    image_tag: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct ImageFilter {
    tag_status: Option<String>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct ImagesInput {
    repository_name: String,
    image_ids: Option<Vec<ImageId>>,
    #[serde(default)]
    filter: ImageFilter,
    max_results: Option<usize>,
    next_token: Option<String>,
}

fn parse_mutability(text: &str) -> Result<TagMutability, EcrError> {
    match text {
        "MUTABLE" => Ok(TagMutability::Mutable),
        "IMMUTABLE" => Ok(TagMutability::Immutable),
        other => Err(EcrError::InvalidParameter(format!(
            "imageTagMutability: expected MUTABLE or IMMUTABLE, found {other:?}"
        ))),
    }
}

/// A page of `items` after `next_token` (an offset), at most `max_results` long.
fn page<T>(
    items: Vec<T>,
    max_results: Option<usize>,
    next_token: Option<&str>,
) -> Result<(Vec<T>, Option<String>), EcrError> {
    let start = match next_token {
        Some(t) => t.parse::<usize>().map_err(|_| {
            EcrError::InvalidParameter(format!("nextToken: {t:?} is not a token berth issued"))
        })?,
        None => 0,
    };
    let max = max_results.unwrap_or(1000).clamp(1, 1000);
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(start).take(max).collect();
    let next = (start + page.len() < total).then(|| (start + page.len()).to_string());
    Ok((page, next))
}

struct Ecr<'a> {
    registry: &'a Registry,
    registry_id: String,
}

impl Ecr<'_> {
    fn not_found(&self, name: &str) -> EcrError {
        EcrError::RepositoryNotFound {
            name: name.to_string(),
            registry_id: self.registry_id.clone(),
        }
    }

    fn repository(&self, name: &str) -> Result<Repository, EcrError> {
        self.registry
            .state()
            .repos
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))
    }

    /// Applies `change` to a repository and saves it; returns the changed copy.
    fn update(
        &self,
        name: &str,
        change: impl FnOnce(&mut Repository),
    ) -> Result<Repository, EcrError> {
        let mut state = self.registry.state();
        let mut repo = state
            .repos
            .get(name)
            .cloned()
            .ok_or_else(|| self.not_found(name))?;
        change(&mut repo);
        self.registry.save_repository(&repo)?;
        state.repos.insert(name.to_string(), repo.clone());
        Ok(repo)
    }

    fn repository_json(&self, repo: &Repository) -> Value {
        let arns = self.registry.arns();
        json!({
            "repositoryArn": format!("arn:aws:ecr:{}:{}:repository/{}", arns.region, arns.account, repo.name),
            "registryId": self.registry_id,
            "repositoryName": repo.name,
            "repositoryUri": format!("{}/{}", self.registry.registry_host(), repo.name),
            "createdAt": repo.created_at,
            "imageTagMutability": repo.image_tag_mutability.as_str(),
            "imageScanningConfiguration": { "scanOnPush": repo.scan_on_push },
            "encryptionConfiguration": { "encryptionType": "AES256" },
        })
    }

    fn create_repository(&self, input: CreateRepositoryInput) -> Result<Value, EcrError> {
        let mut errors = Vec::new();
        if let Err(e) = check_repository_name(&input.repository_name) {
            errors.push(format!("repositoryName: {e}"));
        }
        let mutability = match input.image_tag_mutability.as_deref().map(parse_mutability) {
            None => TagMutability::Mutable,
            Some(Ok(m)) => m,
            Some(Err(e)) => {
                errors.push(e.to_string());
                TagMutability::Mutable
            }
        };
        if !errors.is_empty() {
            return Err(EcrError::InvalidParameter(errors.join("; ")));
        }
        let mut state = self.registry.state();
        if state.repos.contains_key(&input.repository_name) {
            return Err(EcrError::RepositoryAlreadyExists {
                name: input.repository_name,
                registry_id: self.registry_id.clone(),
            });
        }
        let mut repo = Repository::new(&input.repository_name, berth_model::now());
        repo.image_tag_mutability = mutability;
        repo.scan_on_push = input
            .image_scanning_configuration
            .unwrap_or_default()
            .scan_on_push;
        self.registry.save_repository(&repo)?;
        state.repos.insert(repo.name.clone(), repo.clone());
        Ok(json!({ "repository": self.repository_json(&repo) }))
    }

    fn describe_repositories(&self, input: PagedInput) -> Result<Value, EcrError> {
        let repos: Vec<Repository> = match &input.repository_names {
            Some(names) => names
                .iter()
                .map(|n| self.repository(n))
                .collect::<Result<_, _>>()?,
            None => self.registry.state().repos.values().cloned().collect(),
        };
        let (repos, next) = page(repos, input.max_results, input.next_token.as_deref())?;
        let repositories: Vec<Value> = repos.iter().map(|r| self.repository_json(r)).collect();
        Ok(json!({ "repositories": repositories, "nextToken": next }))
    }

    fn delete_repository(&self, input: RepositoryInput) -> Result<Value, EcrError> {
        let name = &input.repository_name;
        let repo = {
            let mut state = self.registry.state();
            let repo = state
                .repos
                .get(name)
                .cloned()
                .ok_or_else(|| self.not_found(name))?;
            if !repo.manifests.is_empty() && !input.force {
                return Err(EcrError::RepositoryNotEmpty {
                    name: name.clone(),
                    registry_id: self.registry_id.clone(),
                });
            }
            self.registry.remove_repository_file(name)?;
            state.repos.remove(name);
            let freed: Vec<Digest> = repo
                .manifests
                .iter()
                .flat_map(|(d, m)| std::iter::once(d.clone()).chain(m.blobs.iter().cloned()))
                .collect();
            Registry::add_orphans(&mut state, freed);
            repo
        };
        self.registry.gc();
        Ok(json!({ "repository": self.repository_json(&repo) }))
    }

    /// Resolves an imageId to a digest in `repo`.
    fn resolve(&self, repo: &Repository, id: &ImageId) -> Result<Digest, String> {
        let by_tag = id
            .image_tag
            .as_ref()
            .map(|t| repo.tags.get(t).cloned().ok_or("ImageNotFound"));
        let by_digest = id.image_digest.as_ref().map(|d| {
            Digest::parse(d)
                .map_err(|_| "InvalidImageDigest")
                .and_then(|d| {
                    if repo.manifests.contains_key(&d) {
                        Ok(d)
                    } else {
                        Err("ImageNotFound")
                    }
                })
        });
        match (by_tag, by_digest) {
            (Some(Ok(t)), Some(Ok(d))) if t != d => Err("ImageTagDoesNotMatchDigest".into()),
            (_, Some(Err(e))) | (Some(Err(e)), _) => Err(e.to_string()),
            (_, Some(Ok(d))) | (Some(Ok(d)), None) => Ok(d),
            (None, None) => Err("MissingDigestAndTag".into()),
        }
    }

    fn image_detail(&self, repo: &Repository, digest: &Digest) -> Value {
        let Some(m) = repo.manifests.get(digest) else {
            return Value::Null;
        };
        let tags = repo.tags_of(digest);
        let mut detail = json!({
            "registryId": self.registry_id,
            "repositoryName": repo.name,
            "imageDigest": digest.to_string(),
            "imageTags": if tags.is_empty() { Value::Null } else { json!(tags) },
            "imageSizeInBytes": m.image_size,
            "imagePushedAt": m.pushed_at,
            "imageManifestMediaType": m.media_type,
            "artifactMediaType": m.artifact_media_type,
            "lastRecordedPullTime": m.last_pulled_at,
        });
        if let Some(at) = m.scan_completed_at {
            detail["imageScanStatus"] = json!({
                "status": "COMPLETE",
                "description": "berth has no vulnerability database: the scan always completes with no findings",
            });
            detail["imageScanFindingsSummary"] = json!({
                "imageScanCompletedAt": at,
                "vulnerabilitySourceUpdatedAt": at,
                "findingSeverityCounts": {},
            });
        }
        detail
    }

    fn filtered(repo: &Repository, filter: &ImageFilter) -> Result<Vec<Digest>, EcrError> {
        let keep = |d: &Digest| -> Result<bool, EcrError> {
            let tagged = !repo.tags_of(d).is_empty();
            match filter.tag_status.as_deref() {
                None | Some("ANY") => Ok(true),
                Some("TAGGED") => Ok(tagged),
                Some("UNTAGGED") => Ok(!tagged),
                Some(other) => Err(EcrError::InvalidParameter(format!(
                    "filter.tagStatus: expected TAGGED, UNTAGGED or ANY, found {other:?}"
                ))),
            }
        };
        let mut out = Vec::new();
        for d in repo.manifests.keys() {
            if keep(d)? {
                out.push(d.clone());
            }
        }
        Ok(out)
    }

    fn describe_images(&self, input: ImagesInput) -> Result<Value, EcrError> {
        let repo = self.repository(&input.repository_name)?;
        let digests = match &input.image_ids {
            Some(ids) => ids
                .iter()
                .map(|id| {
                    self.resolve(&repo, id).map_err(|_| {
                        EcrError::ImageNotFound(format!(
                            "The image with imageId {{imageDigest:'{}', imageTag:'{}'}} does not exist within the repository with name '{}' in the registry with id '{}'",
                            id.image_digest.as_deref().unwrap_or("null"),
                            id.image_tag.as_deref().unwrap_or("null"),
                            repo.name,
                            self.registry_id
                        ))
                    })
                })
                .collect::<Result<Vec<_>, _>>()?,
            None => Self::filtered(&repo, &input.filter)?,
        };
        let (digests, next) = page(digests, input.max_results, input.next_token.as_deref())?;
        let details: Vec<Value> = digests
            .iter()
            .map(|d| self.image_detail(&repo, d))
            .collect();
        Ok(json!({ "imageDetails": details, "nextToken": next }))
    }

    fn list_images(&self, input: ImagesInput) -> Result<Value, EcrError> {
        let repo = self.repository(&input.repository_name)?;
        let mut ids = Vec::new();
        for d in Self::filtered(&repo, &input.filter)? {
            let tags = repo.tags_of(&d);
            if tags.is_empty() {
                ids.push(json!({ "imageDigest": d.to_string() }));
            }
            for t in tags {
                ids.push(json!({ "imageDigest": d.to_string(), "imageTag": t }));
            }
        }
        let (ids, next) = page(ids, input.max_results, input.next_token.as_deref())?;
        Ok(json!({ "imageIds": ids, "nextToken": next }))
    }

    fn batch_delete_image(&self, input: ImagesInput) -> Result<Value, EcrError> {
        let name = &input.repository_name;
        let ids = input.image_ids.clone().unwrap_or_default();
        let mut deleted = Vec::new();
        let mut failures = Vec::new();
        {
            let mut state = self.registry.state();
            let mut repo = state
                .repos
                .get(name)
                .cloned()
                .ok_or_else(|| self.not_found(name))?;
            let mut freed = Vec::new();
            for id in &ids {
                let id_json = json!({ "imageDigest": id.image_digest, "imageTag": id.image_tag });
                let digest = match self.resolve(&repo, id) {
                    Ok(d) => d,
                    Err(code) => {
                        failures.push(json!({ "imageId": id_json, "failureCode": code, "failureReason": format!("{code}: {id_json}") }));
                        continue;
                    }
                };
                let referenced_by_index = repo
                    .manifests
                    .values()
                    .any(|m| m.children.contains(&digest));
                match (&id.image_tag, &id.image_digest) {
                    (Some(tag), None) => {
                        repo.tags.remove(tag);
                        // Removing the last tag of an image deletes the image, as in ECR.
                        if repo.tags_of(&digest).is_empty() && !referenced_by_index {
                            freed.extend(repo.remove_image(&digest));
                        }
                    }
                    _ if referenced_by_index => {
                        failures.push(json!({
                            "imageId": id_json,
                            "failureCode": "ImageReferencedByManifestList",
                            "failureReason": "the image is referenced by a manifest list (index) in this repository",
                        }));
                        continue;
                    }
                    _ => freed.extend(repo.remove_image(&digest)),
                }
                deleted
                    .push(json!({ "imageDigest": digest.to_string(), "imageTag": id.image_tag }));
            }
            self.registry.save_repository(&repo)?;
            state.repos.insert(name.clone(), repo);
            Registry::add_orphans(&mut state, freed);
        }
        self.registry.gc();
        Ok(json!({ "imageIds": deleted, "failures": failures }))
    }

    fn policy_text(&self, text: Option<String>) -> Result<String, EcrError> {
        let text = text.ok_or_else(|| {
            EcrError::InvalidParameter("lifecyclePolicyText: expected a policy".into())
        })?;
        lifecycle::parse_policy(&text).map_err(|errors| {
            EcrError::InvalidParameter(format!(
                "Invalid parameter at 'LifecyclePolicyText' failed to satisfy constraint: 'Lifecycle policy validation failure: {}'",
                errors.join("; ")
            ))
        })?;
        Ok(text)
    }

    fn put_lifecycle_policy(&self, input: RepositoryInput) -> Result<Value, EcrError> {
        let text = self.policy_text(input.lifecycle_policy_text)?;
        self.update(&input.repository_name, |r| {
            r.lifecycle_policy = Some(text.clone())
        })?;
        Ok(json!({
            "registryId": self.registry_id,
            "repositoryName": input.repository_name,
            "lifecyclePolicyText": text,
        }))
    }

    fn get_lifecycle_policy(&self, input: RepositoryInput) -> Result<Value, EcrError> {
        let repo = self.repository(&input.repository_name)?;
        let text =
            repo.lifecycle_policy
                .clone()
                .ok_or_else(|| EcrError::LifecyclePolicyNotFound {
                    name: repo.name.clone(),
                    registry_id: self.registry_id.clone(),
                })?;
        Ok(json!({
            "registryId": self.registry_id,
            "repositoryName": repo.name,
            "lifecyclePolicyText": text,
            "lastEvaluatedAt": repo.lifecycle_last_evaluated_at,
        }))
    }

    fn delete_lifecycle_policy(&self, input: RepositoryInput) -> Result<Value, EcrError> {
        let response = self.get_lifecycle_policy(RepositoryInput { ..input })?;
        let name = response["repositoryName"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        self.update(&name, |r| r.lifecycle_policy = None)?;
        Ok(response)
    }

    fn start_lifecycle_policy_preview(&self, input: RepositoryInput) -> Result<Value, EcrError> {
        let repo = self.repository(&input.repository_name)?;
        let text =
            match input.lifecycle_policy_text {
                Some(t) => self.policy_text(Some(t))?,
                None => repo.lifecycle_policy.clone().ok_or_else(|| {
                    EcrError::LifecyclePolicyNotFound {
                        name: repo.name.clone(),
                        registry_id: self.registry_id.clone(),
                    }
                })?,
            };
        let policy =
            lifecycle::parse_policy(&text).map_err(|e| EcrError::InvalidParameter(e.join("; ")))?;
        let results = lifecycle::evaluate(&policy, &repo.lifecycle_images(), berth_model::now())
            .into_iter()
            .map(|e| PreviewResult {
                digest: e.digest,
                tags: e.tags,
                pushed_at: e.pushed_at,
                applied_rule_priority: e.applied_rule_priority,
            })
            .collect();
        let preview = LifecyclePreview {
            policy_text: text.clone(),
            results,
        };
        self.update(&repo.name, |r| r.preview = Some(preview))?;
        // The preview is computed at once; GetLifecyclePolicyPreview reports it COMPLETE.
        Ok(json!({
            "registryId": self.registry_id,
            "repositoryName": repo.name,
            "lifecyclePolicyText": text,
            "status": "IN_PROGRESS",
        }))
    }

    fn get_lifecycle_policy_preview(&self, input: RepositoryInput) -> Result<Value, EcrError> {
        let repo = self.repository(&input.repository_name)?;
        let preview =
            repo.preview
                .clone()
                .ok_or_else(|| EcrError::LifecyclePolicyPreviewNotFound {
                    name: repo.name.clone(),
                    registry_id: self.registry_id.clone(),
                })?;
        let results: Vec<Value> = preview
            .results
            .iter()
            .map(|r| {
                json!({
                    "imageTags": r.tags,
                    "imageDigest": r.digest,
                    "imagePushedAt": r.pushed_at,
                    "action": { "type": "EXPIRE" },
                    "appliedRulePriority": r.applied_rule_priority,
                })
            })
            .collect();
        Ok(json!({
            "registryId": self.registry_id,
            "repositoryName": repo.name,
            "lifecyclePolicyText": preview.policy_text,
            "status": "COMPLETE",
            "previewResults": results,
            "summary": { "expiringImageTotalCount": preview.results.len() },
        }))
    }

    fn put_image_tag_mutability(&self, input: RepositoryInput) -> Result<Value, EcrError> {
        let text = input.image_tag_mutability.ok_or_else(|| {
            EcrError::InvalidParameter(
                "imageTagMutability: expected MUTABLE or IMMUTABLE, found none".into(),
            )
        })?;
        let mutability = parse_mutability(&text)?;
        self.update(&input.repository_name, |r| {
            r.image_tag_mutability = mutability
        })?;
        Ok(json!({
            "registryId": self.registry_id,
            "repositoryName": input.repository_name,
            "imageTagMutability": mutability.as_str(),
        }))
    }

    fn put_image_scanning_configuration(&self, input: RepositoryInput) -> Result<Value, EcrError> {
        let scan_on_push = input
            .image_scanning_configuration
            .unwrap_or_default()
            .scan_on_push;
        self.update(&input.repository_name, |r| r.scan_on_push = scan_on_push)?;
        Ok(json!({
            "registryId": self.registry_id,
            "repositoryName": input.repository_name,
            "imageScanningConfiguration": { "scanOnPush": scan_on_push },
        }))
    }

    fn get_authorization_token(&self) -> Value {
        // Any credentials are accepted until authentication lands; the token is random anyway.
        let token = format!("AWS:{}", uuid::Uuid::new_v4().simple());
        json!({
            "authorizationData": [{
                "authorizationToken": base64::engine::general_purpose::STANDARD.encode(token),
                "expiresAt": berth_model::now() + 12.0 * 3600.0,
                "proxyEndpoint": format!("http://{}", self.registry.registry_host()),
            }]
        })
    }
}

#[cfg(test)]
mod tests;
