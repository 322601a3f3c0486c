//! Table-driven tests of the scheduler's decisions.

use super::*;

fn task(id: &str, dep: &str, phase: Phase, health: Health) -> TaskView {
    TaskView {
        id: id.into(),
        deployment_id: dep.into(),
        phase,
        health,
        created_at: id[1..].parse().unwrap_or(0.0),
    }
}

fn svc(desired: u32, min: u32, max: u32, tasks: Vec<TaskView>) -> ServiceView {
    ServiceView {
        desired_count: desired,
        minimum_healthy_percent: min,
        maximum_percent: max,
        primary_deployment: "new".into(),
        tasks,
        backoff: Backoff::default(),
    }
}

fn stops(d: &Decision) -> Vec<&str> {
    d.stop.iter().map(|(id, _)| id.as_str()).collect()
}

use Health::*;
use Phase::*;

#[test]
fn creates_desired_tasks_from_nothing() {
    let d = decide(&svc(3, 100, 200, vec![]), 0.0);
    assert_eq!(d.start, 3);
    assert!(d.stop.is_empty());
    assert!(!d.steady);
}

#[test]
fn steady_when_all_primary_tasks_are_healthy() {
    let d = decide(
        &svc(
            2,
            100,
            200,
            vec![
                task("t1", "new", Running, Healthy),
                task("t2", "new", Running, Healthy),
            ],
        ),
        0.0,
    );
    assert_eq!(
        d,
        Decision {
            steady: true,
            ..Decision::default()
        }
    );
}

#[test]
fn replaces_stopped_and_unhealthy_tasks() {
    let d = decide(
        &svc(
            2,
            100,
            200,
            vec![
                task("t1", "new", Stopped, Unknown),
                task("t2", "new", Running, Unhealthy),
            ],
        ),
        0.0,
    );
    assert_eq!(stops(&d), vec!["t2"]);
    assert_eq!(d.stop[0].1, StopReason::Unhealthy);
    assert_eq!(d.start, 2);
}

#[test]
fn rolling_100_200_starts_all_new_before_stopping_old() {
    let old: Vec<_> = (1..=4)
        .map(|i| task(&format!("o{i}"), "old", Running, Healthy))
        .collect();
    let d = decide(&svc(4, 100, 200, old.clone()), 0.0);
    assert_eq!(d.start, 4);
    assert!(
        d.stop.is_empty(),
        "no old task may stop before new ones are healthy"
    );

    // Two new ones healthy: exactly two old ones may go.
    let mut tasks = old;
    tasks.push(task("n5", "new", Running, Healthy));
    tasks.push(task("n6", "new", Running, Healthy));
    tasks.push(task("n7", "new", Running, Unknown));
    tasks.push(task("n8", "new", Pending, Unknown));
    let d = decide(&svc(4, 100, 200, tasks), 0.0);
    assert_eq!(d.start, 0);
    assert_eq!(stops(&d).len(), 2);
    assert!(stops(&d).iter().all(|id| id.starts_with('o')));
}

#[test]
fn rolling_50_100_stops_half_first() {
    let old: Vec<_> = (1..=4)
        .map(|i| task(&format!("o{i}"), "old", Running, Healthy))
        .collect();
    let d = decide(&svc(4, 50, 100, old), 0.0);
    assert_eq!(stops(&d).len(), 2);
    assert_eq!(d.start, 2, "the room freed by stopping is used at once");
}

#[test]
fn desired_one_min_zero_max_100_stops_then_starts() {
    let d = decide(
        &svc(1, 0, 100, vec![task("o1", "old", Running, Healthy)]),
        0.0,
    );
    assert_eq!(stops(&d), vec!["o1"]);
    assert_eq!(d.start, 1);
}

#[test]
fn desired_one_min_100_max_200_starts_then_stops() {
    let d = decide(
        &svc(1, 100, 200, vec![task("o1", "old", Running, Healthy)]),
        0.0,
    );
    assert!(d.stop.is_empty());
    assert_eq!(d.start, 1);
    let d = decide(
        &svc(
            1,
            100,
            200,
            vec![
                task("o1", "old", Running, Healthy),
                task("n2", "new", Running, Healthy),
            ],
        ),
        0.0,
    );
    assert_eq!(stops(&d), vec!["o1"]);
}

#[test]
fn min_100_max_100_cannot_make_room() {
    let d = decide(
        &svc(
            2,
            100,
            100,
            vec![
                task("o1", "old", Running, Healthy),
                task("o2", "old", Running, Healthy),
            ],
        ),
        0.0,
    );
    assert!(d.stop.is_empty());
    assert_eq!(d.start, 0);
    assert!(!d.steady);
}

#[test]
fn old_pending_tasks_are_stopped_freely() {
    let d = decide(
        &svc(1, 100, 200, vec![task("o1", "old", Pending, Unknown)]),
        0.0,
    );
    assert_eq!(stops(&d), vec!["o1"]);
    assert_eq!(d.start, 1);
}

#[test]
fn scale_in_stops_unhealthy_then_newest() {
    let d = decide(
        &svc(
            1,
            100,
            200,
            vec![
                task("t1", "new", Running, Healthy),
                task("t2", "new", Running, Healthy),
                task("t3", "new", Pending, Unknown),
            ],
        ),
        0.0,
    );
    assert_eq!(stops(&d), vec!["t3", "t2"]);
    assert!(d.stop.iter().all(|(_, r)| *r == StopReason::ScaleIn));
}

#[test]
fn scale_to_zero_stops_everything() {
    let d = decide(
        &svc(0, 100, 200, vec![task("t1", "new", Running, Healthy)]),
        0.0,
    );
    assert_eq!(stops(&d), vec!["t1"]);
    assert_eq!(d.start, 0);
}

#[test]
fn backoff_throttles_starts_and_grows_exponentially() {
    let mut b = Backoff::default();
    for _ in 0..2 {
        b = b.after_failure(100.0);
        assert_eq!(b.delay(100.0), None, "the first failures restart at once");
    }
    let mut delays = vec![];
    for _ in 0..9 {
        b = b.after_failure(100.0);
        delays.push(b.delay(100.0).unwrap());
    }
    assert_eq!(
        delays,
        vec![1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 60.0, 60.0, 60.0]
    );
    let mut s = svc(2, 100, 200, vec![]);
    s.backoff = b;
    let d = decide(&s, 130.0);
    assert_eq!(d.start, 0);
    assert_eq!(d.throttled_for, Some(30.0));
    assert_eq!(decide(&s, 161.0).start, 2);
    assert_eq!(b.after_success(), Backoff::default());
}

#[test]
fn percent_rounding_follows_ecs() {
    assert_eq!(max_active(3, 150), 4);
    assert_eq!(min_healthy(3, 50), 2);
    assert_eq!(max_active(1, 100), 1);
    assert_eq!(min_healthy(0, 100), 0);
}
