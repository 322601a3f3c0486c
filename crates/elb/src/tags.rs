//! AddTags, RemoveTags and DescribeTags over every ELBv2 resource kind.

use crate::error::check;
use crate::types::Tag;
use crate::{validate, ElbError, ElbState, MAX_TAGS};
use berth_model::FieldErrors;

impl ElbState {
    /// Fails with the resource kind's not-found error unless the ARN names an existing resource.
    pub fn check_resource_exists(&self, arn: &str) -> Result<(), ElbError> {
        let resource = arn.splitn(6, ':').nth(5).unwrap_or("");
        if resource.starts_with("loadbalancer/") {
            self.load_balancer(arn).map(|_| ())
        } else if resource.starts_with("targetgroup/") {
            self.target_group(arn).map(|_| ())
        } else if resource.starts_with("listener/") {
            self.listener(arn).map(|_| ())
        } else if resource.starts_with("listener-rule/") {
            self.rule(arn).map(|_| ())
        } else {
            Err(ElbError::field("ResourceArns", format!("an ELBv2 load balancer, target group, listener or rule ARN was expected, found '{arn}'")))
        }
    }

    /// AddTags: adds or overwrites tags on each resource.
    pub fn add_tags(&mut self, resource_arns: &[String], tags: &[Tag]) -> Result<(), ElbError> {
        let mut errors = FieldErrors::default();
        if resource_arns.is_empty() {
            errors.push(
                "ResourceArns",
                "at least one resource ARN was expected, found none",
            );
        }
        validate::tags(tags, &mut errors);
        check(errors)?;
        Self::check_duplicate_tag_keys(tags)?;
        for arn in resource_arns {
            self.check_resource_exists(arn)?;
            let existing = self.tags.get(arn);
            let n_after = existing.map_or(0, |e| e.len())
                + tags
                    .iter()
                    .filter(|t| existing.is_none_or(|e| !e.contains_key(&t.key)))
                    .count();
            if n_after > MAX_TAGS {
                return Err(ElbError::TooManyTags(format!(
                    "'{arn}' would have {n_after} tags; at most {MAX_TAGS} are allowed"
                )));
            }
        }
        for arn in resource_arns {
            let entry = self.tags.entry(arn.clone()).or_default();
            for tag in tags {
                entry.insert(tag.key.clone(), tag.value.clone().unwrap_or_default());
            }
        }
        Ok(())
    }

    /// RemoveTags: removes the keys from each resource (absent keys are ignored).
    pub fn remove_tags(
        &mut self,
        resource_arns: &[String],
        tag_keys: &[String],
    ) -> Result<(), ElbError> {
        for arn in resource_arns {
            self.check_resource_exists(arn)?;
        }
        for arn in resource_arns {
            if let Some(entry) = self.tags.get_mut(arn) {
                for key in tag_keys {
                    entry.remove(key);
                }
            }
        }
        Ok(())
    }

    /// DescribeTags: the tags of each resource, in the order asked.
    pub fn describe_tags(
        &self,
        resource_arns: &[String],
    ) -> Result<Vec<(String, Vec<Tag>)>, ElbError> {
        if resource_arns.is_empty() {
            return Err(ElbError::field(
                "ResourceArns",
                "at least one resource ARN was expected, found none",
            ));
        }
        resource_arns
            .iter()
            .map(|arn| {
                self.check_resource_exists(arn)?;
                let tags = self
                    .tags
                    .get(arn)
                    .map(|m| {
                        m.iter()
                            .map(|(k, v)| Tag {
                                key: k.clone(),
                                value: Some(v.clone()),
                            })
                            .collect()
                    })
                    .unwrap_or_default();
                Ok((arn.clone(), tags))
            })
            .collect()
    }

    /// Sets the tags of a just-created resource.
    pub(crate) fn set_initial_tags(&mut self, arn: &str, tags: &[Tag]) {
        if !tags.is_empty() {
            let entry = self.tags.entry(arn.to_string()).or_default();
            for tag in tags {
                entry.insert(tag.key.clone(), tag.value.clone().unwrap_or_default());
            }
        }
    }

    /// Refuses a tag list with a key given twice.
    pub(crate) fn check_duplicate_tag_keys(tags: &[Tag]) -> Result<(), ElbError> {
        match tags
            .iter()
            .enumerate()
            .find(|(i, t)| tags[..*i].iter().any(|o| o.key == t.key))
        {
            Some((_, t)) => Err(ElbError::DuplicateTagKeys(format!(
                "Tag key '{}' was given more than once",
                t.key
            ))),
            None => Ok(()),
        }
    }
}
