//! A tiny per-thread xorshift generator for weighted splits and slow start (not cryptographic).

use std::cell::Cell;

thread_local! {
    static STATE: Cell<u64> = Cell::new(seed());
}

fn seed() -> u64 {
    let t = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0x9e37_79b9_7f4a_7c15);
    let local = 0u8;
    (t ^ (&local as *const u8 as u64).rotate_left(32)) | 1
}

/// Next pseudo-random 64-bit value.
#[inline]
pub fn next() -> u64 {
    STATE.with(|s| {
        let mut x = s.get();
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        s.set(x);
        x
    })
}

/// Uniform in [0, 1).
#[inline]
pub fn unit() -> f64 {
    (next() >> 11) as f64 / (1u64 << 53) as f64
}

/// Uniform in [0, n) for n > 0.
#[inline]
pub fn below(n: u64) -> u64 {
    ((u128::from(next()) * u128::from(n)) >> 64) as u64
}
