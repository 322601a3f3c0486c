//! A duration in seconds that prints as an integer when whole (ECS's wire shape) but may be
//! fractional in berth (sub-second health-check intervals).

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Seconds, possibly fractional.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Default)]
pub struct Seconds(pub f64);

impl Seconds {
    /// As a `std::time::Duration`; negative or NaN values become zero.
    pub fn duration(self) -> std::time::Duration {
        if self.0.is_finite() && self.0 > 0.0 {
            std::time::Duration::from_secs_f64(self.0)
        } else {
            std::time::Duration::ZERO
        }
    }
}

impl Serialize for Seconds {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        if self.0.fract() == 0.0 && self.0.abs() < 1e15 {
            s.serialize_i64(self.0 as i64)
        } else {
            s.serialize_f64(self.0)
        }
    }
}

impl<'de> Deserialize<'de> for Seconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        f64::deserialize(d).map(Seconds)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_seconds_print_as_integers() {
        assert_eq!(serde_json::to_string(&Seconds(30.0)).unwrap(), "30");
        assert_eq!(serde_json::to_string(&Seconds(0.2)).unwrap(), "0.2");
        let s: Seconds = serde_json::from_str("5").unwrap();
        assert_eq!(s, Seconds(5.0));
    }
}
