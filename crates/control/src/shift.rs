//! Traffic-shifting deployments (ECS's BLUE_GREEN, LINEAR and CANARY strategies): the new task
//! set (green) starts in the idle target group; with a test listener rule the test listener
//! reaches green alone first (ECS's TEST_TRAFFIC_SHIFT, for `testTrafficTimeInMinutes`); then
//! production traffic moves to it in steps by re-weighting the production listener rule, and the
//! old set (blue) is kept through the bake time for an instant rollback, then removed. During
//! every stage berth compares the two sets' golden signals (automated canary analysis) and rolls
//! back on its own when the new set is worse.

use crate::ecs::{history_entry, new_deployment, push_event, supersede_history};
use crate::error::ApiError;
use crate::state::{ServiceRecord, State, TrafficShift};
use crate::traffic::Window;
use berth_model::ecs::{CanaryAnalysis, LoadBalancer};

/// The load balancer entry of a traffic-shifting service (the one with advancedConfiguration).
pub(crate) fn shifting_lb(rec: &ServiceRecord) -> Option<&LoadBalancer> {
    if !rec.service.deployment_configuration.shifts_traffic() {
        return None;
    }
    rec.service
        .load_balancers
        .iter()
        .find(|l| l.advanced_configuration.is_some())
}

/// Target group a deployment's tasks belong in.
pub(crate) fn target_group_for(
    rec: &ServiceRecord,
    lb: &LoadBalancer,
    deployment: Option<&str>,
) -> Option<String> {
    let fallback = lb.target_group_arn.clone();
    if lb.advanced_configuration.is_none() {
        return fallback;
    }
    deployment
        .and_then(|d| rec.deployment_target_groups.get(d).cloned())
        .or(fallback)
}

/// Starts a traffic-shifting deployment to `task_definition` (called by UpdateService).
pub(crate) fn begin(
    rec: &mut ServiceRecord,
    task_definition: &str,
    actor: &str,
    trigger: &str,
    t: f64,
) -> Result<(), ApiError> {
    let Some(lb) = shifting_lb(rec).cloned() else {
        return Err(ApiError::invalid("loadBalancers: a BLUE_GREEN, LINEAR or CANARY deployment needs a load balancer with advancedConfiguration"));
    };
    let adv = lb.advanced_configuration.clone().unwrap_or_default();
    let Some(prod_tg) = lb.target_group_arn.clone() else {
        return Err(ApiError::invalid(
            "loadBalancers[0].targetGroupArn: expected a target group ARN",
        ));
    };
    let blue = rec
        .service
        .deployments
        .iter()
        .find(|d| d.status == "PRIMARY")
        .map(|d| d.id.clone())
        .unwrap_or_default();
    let blue_tg = rec
        .deployment_target_groups
        .get(&blue)
        .cloned()
        .unwrap_or_else(|| prod_tg.clone());
    let green_tg = if blue_tg == prod_tg {
        adv.alternate_target_group_arn.clone()
    } else {
        prod_tg.clone()
    };
    for d in rec
        .service
        .deployments
        .iter_mut()
        .filter(|d| d.status == "PRIMARY")
    {
        d.status = "ACTIVE".into();
        d.updated_at = t;
    }
    let dep = new_deployment(task_definition, rec.service.desired_count, t);
    supersede_history(rec, &dep.id, t);
    rec.history
        .insert(0, history_entry(&dep, actor, trigger, None));
    rec.history.truncate(crate::state::MAX_HISTORY);
    let dc = &rec.service.deployment_configuration;
    rec.shift = Some(TrafficShift {
        green: dep.id.clone(),
        blue: blue.clone(),
        green_tg: green_tg.clone(),
        blue_tg: blue_tg.clone(),
        blue_task_definition: rec.service.task_definition.clone(),
        production_rule: adv.production_listener_rule.clone(),
        test_rule: adv.test_listener_rule.clone(),
        stage: "SCALE_UP".into(),
        stage_started_at: t,
        steps: dc.traffic_steps(),
        step: 0,
        step_started_at: t,
        bake_seconds: dc.bake_seconds(),
        test_seconds: dc.test_traffic_seconds(),
        ..TrafficShift::default()
    });
    rec.deployment_target_groups.insert(blue, blue_tg);
    rec.deployment_target_groups
        .insert(dep.id.clone(), green_tg);
    let name = rec.service.service_name.clone();
    push_event(rec, format!("(service {name}) (deployment {}) {} deployment started: new tasks go to the idle target group.", dep.id, dc.strategy()));
    rec.service.task_definition = task_definition.to_string();
    rec.service.deployments.insert(0, dep);
    rec.steady = false;
    rec.backoff_failures = 0;
    rec.backoff_until = 0.0;
    Ok(())
}

fn set_weights(st: &mut State, rule: &str, blue_tg: &str, green_tg: &str, green_percent: u32) {
    let weights = vec![
        (blue_tg.to_string(), 100 - green_percent.min(100)),
        (green_tg.to_string(), green_percent.min(100)),
    ];
    match st.elb.set_forward_weights(rule, &weights) {
        Ok(true) => st.elb_dirty = true,
        Ok(false) => {}
        Err(e) => tracing::warn!(rule, error = %e, "cannot shift traffic"),
    }
}

/// Switches traffic back to blue at once and fails the green deployment.
pub(crate) fn rollback(st: &mut State, rec: &mut ServiceRecord, reason: &str, t: f64) {
    let Some(shift) = rec.shift.take() else {
        return;
    };
    set_weights(
        st,
        &shift.production_rule,
        &shift.blue_tg,
        &shift.green_tg,
        0,
    );
    if let Some(test) = &shift.test_rule {
        set_weights(st, test, &shift.blue_tg, &shift.green_tg, 0);
    }
    let name = rec.service.service_name.clone();
    for d in rec.service.deployments.iter_mut() {
        if d.id == shift.green {
            d.status = "ACTIVE".into();
            d.rollout_state = Some("FAILED".into());
            d.rollout_state_reason = Some(reason.to_string());
            d.updated_at = t;
        } else if d.id == shift.blue {
            d.status = "PRIMARY".into();
            d.updated_at = t;
            // The old set kept running and takes all traffic again: its rollout is over, so the
            // alarm or the failures that stopped the new set are not held against it.
            if d.rollout_state.as_deref() == Some("IN_PROGRESS") {
                d.rollout_state = Some("COMPLETED".into());
                d.rollout_state_reason = Some(format!("ECS deployment {} completed.", d.id));
            }
        }
    }
    rec.service
        .deployments
        .sort_by_key(|d| d.status != "PRIMARY");
    rec.service.task_definition = shift.blue_task_definition.clone();
    if let Some(h) = rec.history.iter_mut().find(|h| h.id == shift.green) {
        h.status = "ROLLBACK_SUCCESSFUL".into();
        h.status_reason = Some(reason.to_string());
        h.finished_at = Some(t);
    }
    push_event(
        rec,
        format!(
            "(service {name}) (deployment {}) deployment failed: {reason}",
            shift.green
        ),
    );
    push_event(
        rec,
        format!(
            "(service {name}) rolled back: all traffic goes to deployment {} again.",
            shift.blue
        ),
    );
    rec.steady = false;
}

/// Whether the green set may not take traffic: the figures that break a threshold, if any.
pub(crate) fn analyse(green: &Window, blue: &Window, limits: &CanaryAnalysis) -> Option<String> {
    if green.requests < limits.min_requests as f64 {
        return None;
    }
    let (g, b) = (green.error_percent(), blue.error_percent());
    if g > b + limits.max_error_rate_increase_percent {
        return Some(format!(
            "canary analysis: the new task set's 5xx rate {g:.1}% ({}/{}) exceeds the old set's {b:.1}% ({}/{}) by more than {} points",
            green.errors, green.requests, blue.errors, blue.requests, limits.max_error_rate_increase_percent
        ));
    }
    if let (Some(gp), Some(bp)) = (green.p99, blue.p99) {
        if (gp - bp) * 1000.0 > limits.max_p99_latency_increase_ms {
            return Some(format!(
                "canary analysis: the new task set's p99 latency {:.0} ms exceeds the old set's {:.0} ms by more than {} ms",
                gp * 1000.0,
                bp * 1000.0,
                limits.max_p99_latency_increase_ms
            ));
        }
    }
    None
}

/// The analysis' verdict on green's traffic since `since`, against blue's over the same time (or
/// blue's baseline when blue served too few requests).
fn judge(
    st: &State,
    shift: &TrafficShift,
    since: f64,
    limits: &CanaryAnalysis,
    t: f64,
) -> Option<String> {
    let green = st.traffic.window(&shift.green_tg, since, t);
    let mut blue = st.traffic.window(&shift.blue_tg, since, t);
    if blue.requests < limits.min_requests as f64 {
        blue = Window {
            requests: shift.baseline_requests,
            errors: shift.baseline_errors,
            p99: shift.baseline_p99,
        };
    }
    analyse(&green, &blue, limits)
}

/// Moves a traffic-shifting deployment along: called every reconcile pass. `green_ready` says
/// whether all green tasks run and are healthy in their target group; `blue_active` how many
/// blue tasks are still not stopped.
pub(crate) fn advance(
    st: &mut State,
    rec: &mut ServiceRecord,
    green_ready: bool,
    blue_active: usize,
    t: f64,
) {
    let Some(mut shift) = rec.shift.clone() else {
        return;
    };
    let name = rec.service.service_name.clone();
    let limits = rec
        .service
        .deployment_configuration
        .canary_analysis
        .clone()
        .unwrap_or_default();
    match shift.stage.as_str() {
        "SCALE_UP" => {
            // Green's target group joins the production rule at weight 0, as in ECS: it is then in
            // use, so the proxy health-checks the new targets before any traffic moves.
            set_weights(
                st,
                &shift.production_rule,
                &shift.blue_tg,
                &shift.green_tg,
                0,
            );
            if let Some(test) = &shift.test_rule {
                set_weights(st, test, &shift.blue_tg, &shift.green_tg, 0);
            }
            if green_ready {
                let base = st.traffic.window(&shift.blue_tg, t - 30.0, t);
                shift.baseline_requests = base.requests;
                shift.baseline_errors = base.errors;
                shift.baseline_p99 = base.p99;
                if let Some(test) = &shift.test_rule {
                    // ECS's TEST_TRAFFIC_SHIFT: the test listener reaches the new set alone while
                    // production traffic stays on the old one.
                    set_weights(st, test, &shift.blue_tg, &shift.green_tg, 100);
                    shift.stage = "TEST_TRAFFIC_SHIFT".into();
                    shift.stage_started_at = t;
                    push_event(rec, format!("(service {name}) (deployment {}) test traffic goes to the new task set; production traffic stays on the old one for {}s.", shift.green, shift.test_seconds));
                } else {
                    start_production_shift(st, rec, &mut shift, t);
                }
            }
        }
        "TEST_TRAFFIC_SHIFT" => {
            // Only test traffic reaches green: the analysis judges it against blue's production
            // traffic (or blue's baseline when production is quiet).
            if let Some(reason) = judge(st, &shift, shift.stage_started_at, &limits, t) {
                rec.shift = Some(shift);
                rollback(st, rec, &format!("{reason} (test traffic)"), t);
                return;
            }
            if t - shift.stage_started_at >= shift.test_seconds {
                start_production_shift(st, rec, &mut shift, t);
            }
        }
        "PRODUCTION_TRAFFIC_SHIFT" | "BAKE_TIME" => {
            if let Some(reason) = judge(st, &shift, shift.step_started_at, &limits, t) {
                rec.shift = Some(shift);
                rollback(st, rec, &reason, t);
                return;
            }
            if shift.stage == "PRODUCTION_TRAFFIC_SHIFT" {
                let hold = shift.steps.get(shift.step).map(|s| s.1).unwrap_or(0.0);
                if t - shift.step_started_at >= hold {
                    if shift.step + 1 < shift.steps.len() {
                        shift.step += 1;
                        shift.step_started_at = t;
                        let p = shift.steps[shift.step].0;
                        set_weights(
                            st,
                            &shift.production_rule,
                            &shift.blue_tg,
                            &shift.green_tg,
                            p,
                        );
                        push_event(rec, format!("(service {name}) (deployment {}) shifted {p}% of production traffic to the new task set.", shift.green));
                    } else {
                        shift.stage = "BAKE_TIME".into();
                        shift.stage_started_at = t;
                        shift.step_started_at = t;
                    }
                }
            } else if t - shift.stage_started_at >= shift.bake_seconds {
                shift.stage = "CLEAN_UP".into();
                shift.stage_started_at = t;
                push_event(rec, format!("(service {name}) (deployment {}) bake time over: stopping the old task set.", shift.green));
            }
        }
        "CLEAN_UP" if blue_active == 0 => {
            rec.shift = None;
            return;
        }
        _ => {}
    }
    rec.shift = Some(shift);
}

/// Moves the first step of production traffic to green.
fn start_production_shift(
    st: &mut State,
    rec: &mut ServiceRecord,
    shift: &mut TrafficShift,
    t: f64,
) {
    let name = rec.service.service_name.clone();
    shift.stage = "PRODUCTION_TRAFFIC_SHIFT".into();
    shift.stage_started_at = t;
    shift.step = 0;
    shift.step_started_at = t;
    let p = shift.steps.first().map(|s| s.0).unwrap_or(100);
    set_weights(
        st,
        &shift.production_rule,
        &shift.blue_tg,
        &shift.green_tg,
        p,
    );
    push_event(
        rec,
        format!(
            "(service {name}) (deployment {}) shifted {p}% of production traffic to the new task set.",
            shift.green
        ),
    );
}

/// Desired count of the blue set while a shift is in progress.
pub(crate) fn blue_desired(shift: &TrafficShift, desired: u32) -> u32 {
    if shift.stage == "CLEAN_UP" {
        0
    } else {
        desired
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn analysis_fails_a_worse_new_set_and_passes_an_equal_one() {
        let limits = CanaryAnalysis::default();
        let w = |requests: f64, errors: f64, p99: f64| Window {
            requests,
            errors,
            p99: Some(p99),
        };
        assert_eq!(
            analyse(&w(100.0, 0.0, 0.01), &w(900.0, 0.0, 0.01), &limits),
            None
        );
        let bad = analyse(&w(100.0, 5.0, 0.01), &w(900.0, 0.0, 0.01), &limits).unwrap();
        assert!(bad.contains("5xx rate 5.0%"), "{bad}");
        let slow = analyse(&w(100.0, 0.0, 0.8), &w(900.0, 0.0, 0.01), &limits).unwrap();
        assert!(slow.contains("p99 latency 800 ms"), "{slow}");
        // Too few requests: no verdict yet.
        assert_eq!(
            analyse(&w(5.0, 5.0, 1.0), &w(900.0, 0.0, 0.01), &limits),
            None
        );
    }
}
