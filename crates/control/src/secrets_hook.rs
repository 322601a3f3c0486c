//! Secrets for tasks: a resolver the binary plugs in (Secrets Manager), used when building a
//! node's assignments to fill each container's `secrets` — values stay in memory and travel only
//! over the agent protocol, never into the store. A secret that can't be resolved stops its task
//! the way ECS does (`ResourceInitializationError`, stop code `TaskFailedToStart`).

use crate::state::{ControlPlane, TASKS};
use berth_model::ecs::{stop_code, task_status};
use berth_model::now;
use berth_model::protocol::agent::TaskAssignment;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

/// Resolves a `valueFrom` for a task id to the value, or to an error text (`Code: message`).
pub type SecretResolver = Arc<dyn Fn(&str, &str) -> Result<String, String> + Send + Sync>;

/// (container, environment name, value) of one resolved secret.
type Resolved = Vec<(String, String, String)>;

/// The resolver and what it resolved per task (so a task's values are read once, at its start).
#[derive(Default)]
pub(crate) struct SecretHook {
    resolver: OnceLock<SecretResolver>,
    resolved: Mutex<HashMap<String, Resolved>>,
}

/// The stopped reason of a task whose secret could not be read, in ECS's words.
pub fn resource_initialization_error(value_from: &str, error: &str) -> String {
    format!(
        "ResourceInitializationError: unable to pull secrets or registry auth: execution resource retrieval failed: unable to retrieve secret from {value_from}: {error}"
    )
}

/// Whether a task definition's `valueFrom` names the secret `arn` (called `name`): its name,
/// its ARN or partial ARN, or the ARN with ECS's `:json-key:stage:version` suffix.
pub fn value_from_names(value_from: &str, arn: &str, name: &str) -> bool {
    if value_from == name {
        return true;
    }
    let head: String = value_from.split(':').take(7).collect::<Vec<_>>().join(":");
    let partial = arn.get(..arn.len().saturating_sub(7)).unwrap_or(arn);
    head == arn || head == partial
}

impl ControlPlane {
    /// Plugs in the resolver of task secrets (set once; later calls are ignored).
    pub fn set_secret_resolver(&self, f: SecretResolver) {
        if self.inner.secrets.resolver.set(f).is_err() {
            tracing::warn!("a secret resolver is already set; keeping the first");
        }
    }

    /// Fills `secrets` of the tasks to run; stops (and leaves out) tasks whose secrets fail.
    pub(crate) fn fill_secrets(&self, tasks: &mut Vec<TaskAssignment>) {
        let hook = &self.inner.secrets;
        let wanted: Vec<usize> = (0..tasks.len())
            .filter(|&i| {
                tasks[i].desired_status == task_status::RUNNING
                    && tasks[i]
                        .task_definition
                        .container_definitions
                        .iter()
                        .any(|c| !c.secrets.is_empty())
            })
            .collect();
        let mut failures: Vec<(String, String)> = Vec::new();
        {
            let mut resolved = hook.resolved.lock().unwrap_or_else(|e| e.into_inner());
            let live: std::collections::HashSet<&str> =
                wanted.iter().map(|&i| tasks[i].task_id.as_str()).collect();
            resolved.retain(|id, _| live.contains(id.as_str()));
            for &i in &wanted {
                let a = &mut tasks[i];
                if let Some(values) = resolved.get(&a.task_id) {
                    a.secrets = values.clone();
                    continue;
                }
                let mut values = Vec::new();
                let mut failure = None;
                'containers: for c in &a.task_definition.container_definitions {
                    for s in &c.secrets {
                        let r = match hook.resolver.get() {
                            Some(f) => f(&s.value_from, &a.task_id),
                            None => Err("no secrets backend is configured".to_string()),
                        };
                        match r {
                            Ok(v) => values.push((c.name.clone(), s.name.clone(), v)),
                            Err(e) => {
                                failure = Some(resource_initialization_error(&s.value_from, &e));
                                break 'containers;
                            }
                        }
                    }
                }
                match failure {
                    None => {
                        a.secrets = values.clone();
                        resolved.insert(a.task_id.clone(), values);
                    }
                    Some(reason) => failures.push((a.task_id.clone(), reason)),
                }
            }
        }
        if failures.is_empty() {
            return;
        }
        // A task the agent already runs (e.g. after a control plane restart) keeps running.
        let unstarted: Vec<(String, String)> = self.read(|st| {
            failures
                .into_iter()
                .filter(|(id, reason)| {
                    let started = st.tasks.get(id).is_some_and(|t| t.task.last_status != task_status::PROVISIONING);
                    if started {
                        tracing::warn!(task = %id, %reason, "cannot resolve the secrets of a started task");
                    }
                    !started
                })
                .collect()
        });
        if unstarted.is_empty() {
            return;
        }
        tasks.retain(|a| !unstarted.iter().any(|(id, _)| id == &a.task_id));
        let t = now();
        let result = self.mutate(|st, _| {
            for (id, reason) in &unstarted {
                let Some(rec) = st.tasks.get_mut(id) else {
                    continue;
                };
                if rec.reported_stopped {
                    continue;
                }
                tracing::warn!(task = %id, %reason, "task stopped: its secrets can't be read");
                let task = &mut rec.task;
                task.desired_status = task_status::STOPPED.into();
                task.last_status = task_status::STOPPED.into();
                task.stop_code = Some(stop_code::TASK_FAILED_TO_START.into());
                task.stopped_reason = Some(reason.clone());
                task.stopping_at.get_or_insert(t);
                task.stopped_at = Some(t);
                task.execution_stopped_at = Some(t);
                for c in &mut task.containers {
                    c.last_status = task_status::STOPPED.into();
                    c.reason.get_or_insert_with(|| reason.clone());
                }
                task.version += 1;
                rec.agent_desired = task_status::STOPPED.into();
                rec.reported_stopped = true;
                st.touch(TASKS, id);
            }
            Ok(())
        });
        if let Err(error) = result {
            tracing::error!(%error, "cannot record tasks stopped for their secrets");
        }
    }

    /// (cluster, service) of the active services whose task definition references the secret.
    pub fn services_using_secret(
        &self,
        secret_arn: &str,
        secret_name: &str,
    ) -> Vec<(String, String)> {
        self.read(|st| {
            st.services
                .values()
                .filter(|s| s.service.status == "ACTIVE")
                .filter(|s| {
                    crate::ecs::find_task_definition(st, &s.service.task_definition).is_ok_and(
                        |td| {
                            td.container_definitions
                                .iter()
                                .flat_map(|c| c.secrets.iter())
                                .any(|x| value_from_names(&x.value_from, secret_arn, secret_name))
                        },
                    )
                })
                .map(|s| (s.cluster.clone(), s.service.service_name.clone()))
                .collect()
        })
    }

    /// Starts a new deployment (forceNewDeployment) of every service using the rotated secret.
    pub fn force_deployments_using_secret(&self, secret_arn: &str, secret_name: &str) {
        for (cluster, service) in self.services_using_secret(secret_arn, secret_name) {
            let input = serde_json::json!({"cluster": cluster, "service": service, "forceNewDeployment": true});
            match crate::ecs::call_as(self, "UpdateService", input, "berth:secret-rotation") {
                Ok(_) => {
                    tracing::info!(%cluster, %service, secret = %secret_arn, "new deployment after secret rotation")
                }
                Err(error) => {
                    tracing::warn!(%cluster, %service, %error, "cannot redeploy after secret rotation")
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_from_matches_name_arn_partial_and_suffixed_forms() {
        let arn = "arn:aws:secretsmanager:us-east-1:000000000000:secret:db-AbCdEf";
        assert!(value_from_names("db", arn, "db"));
        assert!(value_from_names(arn, arn, "db"));
        assert!(value_from_names(
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:db",
            arn,
            "db"
        ));
        assert!(value_from_names(&format!("{arn}:password::"), arn, "db"));
        assert!(!value_from_names("db2", arn, "db"));
        assert!(!value_from_names(
            "arn:aws:secretsmanager:us-east-1:000000000000:secret:other-AbCdEf",
            arn,
            "db"
        ));
    }

    #[test]
    fn reason_names_the_secret_and_error() {
        let r = resource_initialization_error("missing", "ResourceNotFoundException: not found");
        assert!(
            r.starts_with("ResourceInitializationError: unable to pull secrets or registry auth:")
        );
        assert!(r.contains("retrieve secret from missing: ResourceNotFoundException"));
    }
}
