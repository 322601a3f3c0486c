//! Table-driven tests of the health state machine and the matcher.

use super::*;

const TH: Thresholds = Thresholds {
    healthy: 3,
    unhealthy: 2,
};

fn run(start: Health, outcomes: &[Outcome]) -> Vec<(State, Reason)> {
    let mut h = start;
    outcomes
        .iter()
        .map(|o| {
            h = step(h, *o, TH);
            (h.state, h.reason)
        })
        .collect()
}

#[test]
fn state_machine_table() {
    use Outcome::*;
    use Reason as R;
    use State as S;
    let healthy = Health {
        state: S::Healthy,
        reason: R::None,
        ok_streak: 5,
        fail_streak: 0,
    };
    type Case = (&'static str, Health, Vec<Outcome>, Vec<(State, Reason)>);
    let table: Vec<Case> = vec![
        (
            "new target needs `healthy` successes",
            Health::REGISTERED,
            vec![Success, Success, Success],
            vec![
                (S::Initial, R::InitialHealthChecking),
                (S::Initial, R::InitialHealthChecking),
                (S::Healthy, R::None),
            ],
        ),
        (
            "new target failing becomes unhealthy",
            Health::REGISTERED,
            vec![Timeout, Timeout],
            vec![
                (S::Initial, R::InitialHealthChecking),
                (S::Unhealthy, R::Timeout),
            ],
        ),
        (
            "healthy target tolerates one failure",
            healthy,
            vec![CodeMismatch, Success, CodeMismatch],
            vec![
                (S::Healthy, R::None),
                (S::Healthy, R::None),
                (S::Healthy, R::None),
            ],
        ),
        (
            "healthy target leaves after `unhealthy` failures",
            healthy,
            vec![CodeMismatch, CodeMismatch],
            vec![
                (S::Healthy, R::None),
                (S::Unhealthy, R::ResponseCodeMismatch),
            ],
        ),
        (
            "unhealthy target comes back after `healthy` successes, streak resets on failure",
            Health {
                state: S::Unhealthy,
                reason: R::Timeout,
                ok_streak: 0,
                fail_streak: 4,
            },
            vec![Success, Success, Failed, Success, Success, Success],
            vec![
                (S::Unhealthy, R::Timeout),
                (S::Unhealthy, R::Timeout),
                (S::Unhealthy, R::FailedHealthChecks),
                (S::Unhealthy, R::FailedHealthChecks),
                (S::Unhealthy, R::FailedHealthChecks),
                (S::Healthy, R::None),
            ],
        ),
    ];
    for (name, start, outcomes, expected) in table {
        assert_eq!(run(start, &outcomes), expected, "{name}");
    }
}

#[test]
fn passive_failure_and_packing() {
    let h = Health {
        state: State::Healthy,
        reason: Reason::None,
        ok_streak: 9,
        fail_streak: 0,
    };
    let failed = mark_failed(h);
    assert_eq!(failed.state, State::Unhealthy);
    assert!(!failed.in_rotation());
    assert_eq!(Health::unpack(failed.pack()), failed);
    assert_eq!(Health::unpack(Health::DISABLED.pack()), Health::DISABLED);
    assert!(Health::DISABLED.in_rotation());
    assert!(!Health::REGISTERED.in_rotation());
}

#[test]
fn matcher_parsing() {
    let m = Matcher::parse("200").unwrap();
    assert!(m.matches(200) && !m.matches(201));
    let m = Matcher::parse("200-299").unwrap();
    assert!(m.matches(204) && !m.matches(302));
    let m = Matcher::parse("200,302").unwrap();
    assert!(m.matches(302) && !m.matches(301));
    let m = Matcher::parse("200, 300-302").unwrap();
    assert!(m.matches(301));
    for bad in ["", "abc", "299-200", "99", "600", "200,", "2OO"] {
        assert!(Matcher::parse(bad).is_err(), "{bad:?} should be rejected");
    }
}
