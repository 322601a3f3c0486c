//! Service events written by other components (Application Auto Scaling's activities), kept with
//! the events the scheduler writes and returned by DescribeServices.

use crate::error::ApiError;
use crate::state::{service_key, ControlPlane, SERVICES};

impl ControlPlane {
    /// Adds `message` as the newest event of `cluster`/`service` (stored like every other change).
    pub fn add_service_event(
        &self,
        cluster: &str,
        service: &str,
        message: &str,
    ) -> Result<(), ApiError> {
        let key = service_key(cluster, service);
        self.mutate(|st, _| {
            let rec = st
                .services
                .get_mut(&key)
                .ok_or_else(|| ApiError::service_not_found(service))?;
            crate::ecs::push_event(rec, message.to_string());
            st.touch(SERVICES, &key);
            Ok(())
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::state::{ControlConfig, ControlPlane};
    use serde_json::json;

    #[test]
    fn an_added_event_is_the_newest_and_a_missing_service_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let config = ControlConfig {
            state_dir: dir.path().into(),
            arns: Default::default(),
            listen_host: "127.0.0.1".into(),
        };
        let cp = ControlPlane::with_store(config, Box::new(berth_store::MemoryStore::default()))
            .unwrap();
        crate::ecs::call(
            &cp,
            "RegisterTaskDefinition",
            json!({"family": "web", "containerDefinitions": [{"name": "app", "image": "process://berth", "command": ["demo-app"]}]}),
        )
        .unwrap();
        crate::ecs::call(
            &cp,
            "CreateService",
            json!({"serviceName": "web", "taskDefinition": "web", "desiredCount": 0}),
        )
        .unwrap();
        cp.add_service_event("default", "web", "(service web) was scaled by a test.")
            .unwrap();
        let out = crate::ecs::call(&cp, "DescribeServices", json!({"services": ["web"]})).unwrap();
        assert_eq!(
            out["services"][0]["events"][0]["message"],
            "(service web) was scaled by a test."
        );
        let err = cp.add_service_event("default", "nope", "x").unwrap_err();
        assert_eq!(err.code, "ServiceNotFoundException");
    }
}
