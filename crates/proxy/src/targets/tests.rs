//! Tests of target selection: round robin, health, fail-open, draining, stickiness, LOR.

use super::*;
use crate::health::{Reason, State};

fn group(n: usize, algorithm: Algorithm) -> Group {
    let epoch = Instant::now();
    let targets: Vec<Arc<Target>> = (0..n)
        .map(|i| {
            let t = Target::new("tg", "127.0.0.1", 8000 + i as u16, true, epoch).unwrap();
            t.set_health(Health {
                state: State::Healthy,
                reason: Reason::None,
                ok_streak: 5,
                fail_streak: 0,
            });
            Arc::new(t)
        })
        .collect();
    Group {
        arn: "tg".into(),
        name: "tg".into(),
        dimension: "targetgroup/tg/1".into(),
        algorithm,
        slow_start: Duration::ZERO,
        stickiness: None,
        health_check: Arc::new(HealthCheck {
            enabled: true,
            path: "/".into(),
            port: None,
            interval: Duration::from_secs(1),
            timeout: Duration::from_secs(1),
            thresholds: Thresholds {
                healthy: 1,
                unhealthy: 1,
            },
            matcher: Matcher::ok(),
        }),
        targets,
        sticky_cookies: Vec::new(),
        rr: Arc::new(AtomicUsize::new(0)),
        metrics: Arc::default(),
        group_key: 1,
        response_timeout: Duration::from_secs(1),
        in_use: true,
        epoch,
    }
}

fn ports(g: &Group, n: usize, sticky: Option<u64>) -> Vec<u16> {
    (0..n)
        .map(|_| g.pick(sticky, None).map(|(_, t)| t.port).unwrap_or(0))
        .collect()
}

fn unhealthy(t: &Target) {
    t.set_health(Health {
        state: State::Unhealthy,
        reason: Reason::Timeout,
        ok_streak: 0,
        fail_streak: 2,
    });
}

#[test]
fn round_robin_skips_targets_out_of_rotation() {
    let g = group(3, Algorithm::RoundRobin);
    assert_eq!(ports(&g, 6, None), vec![8000, 8001, 8002, 8000, 8001, 8002]);
    unhealthy(&g.targets[1]);
    g.targets[2].draining.store(true, Relaxed);
    assert_eq!(ports(&g, 3, None), vec![8000, 8000, 8000]);
}

#[test]
fn all_unhealthy_fails_open_but_draining_or_empty_gives_none() {
    let g = group(2, Algorithm::RoundRobin);
    g.targets.iter().for_each(|t| unhealthy(t));
    let mut seen = ports(&g, 4, None);
    seen.sort();
    assert_eq!(
        seen,
        vec![8000, 8000, 8001, 8001],
        "fail open to every unhealthy target"
    );
    g.targets
        .iter()
        .for_each(|t| t.draining.store(true, Relaxed));
    assert!(g.pick(None, None).is_none(), "only draining targets: 503");
    assert!(
        group(0, Algorithm::RoundRobin).pick(None, None).is_none(),
        "no targets: 503"
    );
}

#[test]
fn sticky_key_pins_while_in_rotation() {
    let g = group(3, Algorithm::RoundRobin);
    let key = g.targets[2].sticky_key;
    assert_eq!(ports(&g, 4, Some(key)), vec![8002; 4]);
    unhealthy(&g.targets[2]);
    assert!(
        !ports(&g, 4, Some(key)).contains(&8002),
        "unhealthy sticky target is left"
    );
    assert_eq!(parse_key(&format!("{key:016x}")), Some(key));
    assert_eq!(parse_key("zz"), None);
}

#[test]
fn least_outstanding_prefers_idle_targets() {
    let g = group(3, Algorithm::LeastOutstandingRequests);
    let _busy: Vec<InFlight> = (0..3)
        .map(|_| InFlight::new(g.targets[0].clone()))
        .collect();
    let _one = InFlight::new(g.targets[1].clone());
    assert_eq!(ports(&g, 3, None), vec![8002; 3]);
    drop(_one);
    assert!(!ports(&g, 6, None).contains(&8000));
}

#[test]
fn slow_start_ramps_a_newly_healthy_target() {
    let mut g = group(2, Algorithm::RoundRobin);
    g.slow_start = Duration::from_secs(3600);
    // Target 0 ramped up long ago; target 1 just became healthy.
    g.targets[0].healthy_since_ms.store(0, Relaxed);
    g.epoch = Instant::now() - Duration::from_secs(7200);
    g.targets[1]
        .healthy_since_ms
        .store(g.epoch.elapsed().as_millis() as u64, Relaxed);
    let picks = ports(&g, 1000, None);
    let new = picks.iter().filter(|p| **p == 8001).count();
    assert!(
        new < 50,
        "new target got {new} of 1000 at the start of its slow start"
    );
}

#[test]
fn cookies_parse_from_headers() {
    let mut h = http::HeaderMap::new();
    h.append(
        http::header::COOKIE,
        HeaderValue::from_static("a=1; AWSALB=00000000000000ff; b=2"),
    );
    let h = crate::fields::Fields::from_map(&h);
    assert_eq!(cookie(&h, "AWSALB"), Some("00000000000000ff"));
    assert_eq!(cookie(&h, "AWSALBTG"), None);
    assert_eq!(
        set_cookie("AWSALB", 255, Duration::from_secs(60))
            .to_str()
            .unwrap(),
        "AWSALB=00000000000000ff; Max-Age=60; Path=/"
    );
}
