//! Table-driven tests of the scaling decisions.

use super::*;

#[test]
fn target_tracking_table() {
    // (current, metric, target, scale_in, expected)
    let cases: &[(u32, f64, f64, bool, Option<u32>)] = &[
        (2, 90.0, 50.0, true, Some(4)),  // ceil(3.6)
        (2, 75.0, 50.0, true, Some(3)),  // exactly 3, no float noise
        (4, 51.0, 50.0, true, Some(5)),  // just over: one more
        (2, 50.0, 50.0, true, None),     // on target
        (2, 46.0, 50.0, true, None),     // within the 10% margin
        (4, 10.0, 50.0, true, Some(2)),  // ceil(0.8) = 1 but at most half per step
        (4, 40.0, 50.0, true, None),     // needs ceil(3.2) = 4: stay
        (10, 20.0, 50.0, true, Some(5)), // needs 4, step limit 5
        (10, 30.0, 50.0, true, Some(6)), // needs 6, within step limit
        (1, 0.0, 50.0, true, Some(0)),   // one idle task: may go to 0 (min clamps later)
        (3, 0.0, 50.0, true, Some(2)),   // floor(1.5) = 1 at most per step
        (4, 10.0, 50.0, false, None),    // DisableScaleIn
        (0, 10.0, 5.0, true, Some(1)),   // nothing running and load: start one
        (0, 0.0, 5.0, true, None),
        (2, f64::NAN, 50.0, true, None), // no data
        (2, 90.0, 0.0, true, None),      // invalid target
        (3, 1000.0, 1.0, true, Some(3000)),
    ];
    for (i, (current, metric, target, scale_in, want)) in cases.iter().enumerate() {
        assert_eq!(
            target_tracking_capacity(*current, *metric, *target, *scale_in),
            *want,
            "case {i}: {current} tasks at {metric} against {target}"
        );
    }
}

#[test]
fn combining_votes_table() {
    use Vote::*;
    let cases: &[(&[Vote], Option<Vote>)] = &[
        (&[], None),
        (&[Hold], None),
        (&[Out(4), Out(6), Hold], Some(Out(6))), // largest scale-out wins
        (&[Out(3), In(1)], Some(Out(3))),        // scale-out beats scale-in
        (&[In(2), In(3)], Some(In(3))),          // all agree: the largest capacity
        (&[In(2), Hold], None),                  // one disagrees: no scale-in
    ];
    for (votes, want) in cases {
        assert_eq!(combine(votes), *want, "{votes:?}");
    }
}

#[test]
fn cooldowns_table() {
    let mut c = Cooldowns::default();
    assert!(c.scale_out_allowed(0.0, 3) && c.scale_in_allowed(0.0));
    c.scaled_out(100.0, 2, 4, 60.0);
    // (now, proposed, out allowed, in allowed)
    let cases = [
        (110.0, 4, false, false), // same capacity as the one in progress
        (110.0, 3, false, false),
        (110.0, 6, true, false), // bigger than the scale-out in progress
        (160.0, 4, true, true),  // cooldown over
    ];
    for (now, proposed, out, inn) in cases {
        assert_eq!(
            (c.scale_out_allowed(now, proposed), c.scale_in_allowed(now)),
            (out, inn),
            "at {now} to {proposed}"
        );
    }
    // Scale-out base: running tasks; without them, the capacity before the scale-out in progress.
    assert_eq!(c.scale_out_base(110.0, 4, 3), 3);
    assert_eq!(c.scale_out_base(110.0, 4, 9), 4);
    assert_eq!(c.scale_out_base(110.0, 4, 0), 2);
    assert_eq!(c.scale_out_base(170.0, 4, 0), 4);
    c.scaled_in(200.0, 30.0);
    assert!(
        !c.scale_in_allowed(220.0),
        "scale-in cooldown blocks scale-in"
    );
    assert!(
        c.scale_out_allowed(220.0, 1),
        "scale-in cooldown never blocks scale-out"
    );
    assert!(c.scale_in_allowed(230.0));
}

fn step(lo: Option<f64>, hi: Option<f64>, adj: i64) -> StepAdjustment {
    StepAdjustment {
        metric_interval_lower_bound: lo,
        metric_interval_upper_bound: hi,
        scaling_adjustment: adj,
    }
}

#[test]
fn steps_are_chosen_by_breach_size() {
    let steps = [
        step(Some(0.0), Some(10.0), 1),
        step(Some(10.0), Some(20.0), 2),
        step(Some(20.0), None, 4),
    ];
    let cases = [
        (0.0, Some(1)),
        (9.99, Some(1)),
        (10.0, Some(2)),
        (19.0, Some(2)),
        (20.0, Some(4)),
        (500.0, Some(4)),
        (-1.0, None),
    ];
    for (delta, want) in cases {
        assert_eq!(
            step_for(&steps, delta).map(|s| s.scaling_adjustment),
            want,
            "delta {delta}"
        );
    }
    // Below the threshold (scale-in steps): lower exclusive, upper inclusive.
    let down = [
        step(Some(-10.0), Some(0.0), -1),
        step(None, Some(-10.0), -2),
    ];
    let cases = [
        (0.0, None),
        (-0.5, Some(-1)),
        (-10.0, Some(-2)),
        (-50.0, Some(-2)),
    ];
    for (delta, want) in cases {
        assert_eq!(
            step_for(&down, delta).map(|s| s.scaling_adjustment),
            want,
            "delta {delta}"
        );
    }
}

#[test]
fn step_validation_finds_overlaps_gaps_and_order() {
    assert!(validate_steps(
        &[step(Some(0.0), Some(10.0), 1), step(Some(10.0), None, 2)],
        "s"
    )
    .is_empty());
    assert!(validate_steps(&[step(None, None, 1)], "s").is_empty());
    let gap = validate_steps(
        &[step(Some(0.0), Some(10.0), 1), step(Some(15.0), None, 2)],
        "s",
    );
    assert!(
        gap.iter()
            .any(|e| e.contains("gap") && e.contains("10") && e.contains("15")),
        "{gap:?}"
    );
    let overlap = validate_steps(
        &[step(Some(0.0), Some(10.0), 1), step(Some(5.0), None, 2)],
        "s",
    );
    assert_eq!(overlap.len(), 1, "{overlap:?}");
    let backwards = validate_steps(&[step(Some(10.0), Some(0.0), 1)], "StepAdjustments");
    assert!(
        backwards[0].starts_with("StepAdjustments[0]: "),
        "{backwards:?}"
    );
    assert!(!validate_steps(&[], "s").is_empty());
    let two_open = validate_steps(&[step(None, Some(0.0), 1), step(None, Some(5.0), 1)], "s");
    assert!(
        two_open.iter().any(|e| e.contains("at most one")),
        "{two_open:?}"
    );
}

#[test]
fn adjustments_table() {
    use AdjustmentType::*;
    // (current, kind, adjustment, min magnitude, expected)
    let cases = [
        (2, ChangeInCapacity, 2, None, 4),
        (2, ChangeInCapacity, -3, None, -1), // clamped later
        (2, ExactCapacity, 7, None, 7),
        (10, PercentChangeInCapacity, 25, None, 12), // 2.5 → 2
        (3, PercentChangeInCapacity, 10, None, 4),   // 0.3 → 1
        (3, PercentChangeInCapacity, -10, None, 2),  // -0.3 → -1
        (10, PercentChangeInCapacity, -67, None, 4), // -6.7 → -6
        (10, PercentChangeInCapacity, 10, Some(3), 13), // 1 → at least 3
        (10, PercentChangeInCapacity, 0, Some(3), 10),
    ];
    for (current, kind, adj, mm, want) in cases {
        assert_eq!(
            adjusted_capacity(current, kind, adj, mm),
            want,
            "{current} {kind:?} {adj} {mm:?}"
        );
    }
    assert_eq!(clamp(-1, 1, 5), 1);
    assert_eq!(clamp(9, 1, 5), 5);
    assert_eq!(clamp(3, 1, 5), 3);
    assert_eq!(AdjustmentType::parse("Bogus"), None);
}
