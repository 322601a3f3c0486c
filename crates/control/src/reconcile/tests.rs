//! Tests of the controllers' pure parts: failing deployments and the circuit breaker threshold.

use super::*;
use crate::state::{DeploymentHistory, TrafficShift};

/// A service on revision 2 whose deployment `new` is in progress; revision 1 completed.
fn service(shift: bool) -> ServiceRecord {
    let mut new = crate::ecs::new_deployment("td:2", 2, 10.0);
    new.id = "new".into();
    let mut old = crate::ecs::new_deployment("td:1", 2, 1.0);
    old.id = "old".into();
    old.status = "ACTIVE".into();
    old.rollout_state = Some("COMPLETED".into());
    let history = |id: &str, td: &str| DeploymentHistory {
        id: id.into(),
        task_definition: td.into(),
        status: "IN_PROGRESS".into(),
        ..DeploymentHistory::default()
    };
    ServiceRecord {
        cluster: "default".into(),
        service: berth_model::ecs::Service {
            service_name: "web".into(),
            desired_count: 2,
            task_definition: "td:2".into(),
            deployments: vec![new, old],
            ..Default::default()
        },
        tags: vec![],
        backoff_failures: 4,
        backoff_until: 99.0,
        steady: true,
        throttle_reported: false,
        next_event: 0,
        history: vec![history("new", "td:2"), history("old", "td:1")],
        last_completed_task_definition: Some("td:1".into()),
        shift: shift.then(|| TrafficShift {
            green: "new".into(),
            blue: "old".into(),
            blue_task_definition: "td:1".into(),
            stage: "PRODUCTION_TRAFFIC_SHIFT".into(),
            ..TrafficShift::default()
        }),
        deployment_target_groups: Default::default(),
    }
}

fn fail(rec: &mut ServiceRecord, rollback: bool) {
    let failure = Failure {
        reason: "the deployment alarm a went into ALARM: x".into(),
        rollback,
        trigger: "deployment alarm",
    };
    fail_deployment(&mut State::default(), rec, "web", "new", failure, 20.0);
}

#[test]
fn a_failed_rolling_deployment_rolls_back_to_the_last_completed_revision() {
    let mut rec = service(false);
    fail(&mut rec, true);
    let d = &rec.service.deployments;
    assert_eq!(
        (d[0].status.as_str(), d[0].task_definition.as_str()),
        ("PRIMARY", "td:1")
    );
    assert_eq!(d[0].rollout_state.as_deref(), Some("IN_PROGRESS"));
    let failed = d.iter().find(|x| x.id == "new").unwrap();
    assert_eq!(
        (failed.status.as_str(), failed.rollout_state.as_deref()),
        ("ACTIVE", Some("FAILED"))
    );
    assert_eq!(rec.service.task_definition, "td:1");
    assert_eq!(rec.history[0].trigger, "deployment alarm");
    assert_eq!(rec.history[0].rollback_of.as_deref(), Some("new"));
    assert_eq!(rec.history[1].status, "ROLLBACK_IN_PROGRESS");
    assert_eq!((rec.backoff_failures, rec.steady), (0, false));
}

#[test]
fn without_rollback_the_deployment_stops_where_it_is() {
    let mut rec = service(false);
    fail(&mut rec, false);
    assert_eq!(rec.service.task_definition, "td:2");
    assert_eq!(rec.service.deployments.len(), 2);
    assert_eq!(
        rec.service.deployments[0].rollout_state.as_deref(),
        Some("FAILED")
    );
    assert_eq!(rec.history[0].status, "STOPPED");
    assert_eq!(rec.history[0].finished_at, Some(20.0));
}

#[test]
fn a_failed_traffic_shift_switches_back_to_the_old_set() {
    let mut rec = service(true);
    // The new set started before the old one's rollout was marked complete.
    rec.service.deployments[1].rollout_state = Some("IN_PROGRESS".into());
    fail(&mut rec, true);
    assert!(rec.shift.is_none());
    assert_eq!(rec.service.task_definition, "td:1");
    let d = &rec.service.deployments;
    assert_eq!(d.len(), 2, "no rolling rollback deployment: {d:?}");
    assert_eq!((d[0].id.as_str(), d[0].status.as_str()), ("old", "PRIMARY"));
    assert_eq!(
        d[0].rollout_state.as_deref(),
        Some("COMPLETED"),
        "the old set is not judged again by what failed the new one"
    );
    assert_eq!(d[1].rollout_state.as_deref(), Some("FAILED"));
    assert_eq!(rec.history[0].status, "ROLLBACK_SUCCESSFUL");
}

#[test]
fn circuit_breaker_threshold_follows_ecs() {
    for (desired, want) in [(0, 3), (1, 3), (4, 3), (6, 3), (7, 4), (10, 5), (1000, 200)] {
        assert_eq!(super::failure_threshold(desired), want, "desired {desired}");
    }
}
