//! Validating newtypes for identifiers and percentages.
//!
//! They can only be built through `parse`/`new` (or serde, which goes through the same check), so
//! code past the boundary never sees an invalid key or an out-of-range percentage.

use serde::{Deserialize, Serialize};
use std::fmt;
use thiserror::Error;

/// Why a string is not a valid [`FlagKey`] or [`SegmentKey`].
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum KeyError {
    #[error("a key must not be empty")]
    Empty,
    #[error("a key is at most 255 characters long (got {0})")]
    TooLong(usize),
    #[error("a key must start with a letter or a digit")]
    BadStart,
    #[error("a key may only contain letters, digits, '_', '-' and '.' (found {0:?})")]
    BadChar(char),
}

/// The key rule shared by flags and segments: 1..=255 ASCII characters from `[A-Za-z0-9_.-]`,
/// starting with a letter or digit. This admits every key format Reflag offers (camelCase,
/// PascalCase, snake_case, kebab-case, upper and lower) and keeps keys safe in URLs, query
/// parameters and as rollout hash prefixes (a `.` inside a key cannot be confused with the
/// `key.value` separator because the key is always the prefix).
fn check_key(s: &str) -> Result<(), KeyError> {
    let len = s.chars().count();
    if len == 0 {
        return Err(KeyError::Empty);
    }
    if len > 255 {
        return Err(KeyError::TooLong(len));
    }
    if let Some(c) = s
        .chars()
        .find(|c| !(c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.')))
    {
        return Err(KeyError::BadChar(c));
    }
    if !s.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(KeyError::BadStart);
    }
    Ok(())
}

macro_rules! key_newtype {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(try_from = "String", into = "String")]
        pub struct $name(String);

        impl $name {
            /// Validates `s` against the key rule (see the module docs).
            pub fn parse(s: impl Into<String>) -> Result<Self, KeyError> {
                let s = s.into();
                check_key(&s)?;
                Ok(Self(s))
            }

            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl TryFrom<String> for $name {
            type Error = KeyError;
            fn try_from(s: String) -> Result<Self, KeyError> {
                Self::parse(s)
            }
        }

        impl From<$name> for String {
            fn from(k: $name) -> String {
                k.0
            }
        }

        impl AsRef<str> for $name {
            fn as_ref(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

key_newtype!(
    /// A flag key: immutable identifier, rollout-hash prefix and event name.
    FlagKey
);
key_newtype!(
    /// A segment key: how access rules and config variants refer to a segment.
    SegmentKey
);
key_newtype!(
    /// An environment key (`production`, `staging`, …): how the CLI, imports and URLs name an
    /// environment, and the `envId` of Reflag's live-update messages.
    EnvironmentKey
);

/// Why a number is not a valid [`Percentage`].
#[derive(Debug, Clone, PartialEq, Error)]
pub enum PercentageError {
    #[error("a percentage must be a finite number between 0 and 100 (got {0})")]
    OutOfRange(f64),
    #[error("a percentage has at most 3 decimals (got {0})")]
    TooPrecise(f64),
}

/// A rollout percentage, 0..=100 with at most three decimals, stored as thousandths so that the
/// wire threshold (`partialRolloutThreshold`, percent × 1000) is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "f64", into = "f64")]
pub struct Percentage(u32);

impl Percentage {
    pub const ZERO: Percentage = Percentage(0);
    pub const FULL: Percentage = Percentage(100_000);

    pub fn new(p: f64) -> Result<Self, PercentageError> {
        if !p.is_finite() || !(0.0..=100.0).contains(&p) {
            return Err(PercentageError::OutOfRange(p));
        }
        let thousandths = (p * 1000.0).round();
        // Accept binary noise such as 12.345000000000001 but not a genuine fourth decimal.
        if (thousandths - p * 1000.0).abs() > 1e-6 {
            return Err(PercentageError::TooPrecise(p));
        }
        // In range by the check above, so the cast cannot truncate.
        Ok(Self(thousandths as u32))
    }

    /// The wire threshold: `round(p * 1000)`, 0..=100000.
    pub fn threshold(self) -> u32 {
        self.0
    }

    pub fn is_full(self) -> bool {
        self.0 == 100_000
    }

    pub fn as_f64(self) -> f64 {
        f64::from(self.0) / 1000.0
    }
}

impl Default for Percentage {
    /// Rules default to 100 % in the UI.
    fn default() -> Self {
        Self::FULL
    }
}

impl TryFrom<f64> for Percentage {
    type Error = PercentageError;
    fn try_from(p: f64) -> Result<Self, PercentageError> {
        Self::new(p)
    }
}

impl From<Percentage> for f64 {
    fn from(p: Percentage) -> f64 {
        p.as_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_follow_the_documented_rule() {
        assert!(FlagKey::parse("huddle").is_ok());
        assert!(FlagKey::parse("New_Feature-2.beta").is_ok());
        assert!(FlagKey::parse("9lives").is_ok());
        assert_eq!(FlagKey::parse(""), Err(KeyError::Empty));
        assert_eq!(FlagKey::parse("-x"), Err(KeyError::BadStart));
        assert_eq!(FlagKey::parse("a b"), Err(KeyError::BadChar(' ')));
        assert_eq!(FlagKey::parse("é"), Err(KeyError::BadChar('é')));
        assert!(FlagKey::parse("a".repeat(255)).is_ok());
        assert_eq!(FlagKey::parse("a".repeat(256)), Err(KeyError::TooLong(256)));
        assert!(serde_json::from_str::<FlagKey>("\"bad key\"").is_err());
    }

    #[test]
    fn percentages_map_to_thousandths() {
        assert_eq!(Percentage::new(50.0).map(Percentage::threshold), Ok(50_000));
        assert_eq!(Percentage::new(12.345).map(Percentage::threshold), Ok(12_345));
        assert_eq!(Percentage::new(0.001).map(Percentage::threshold), Ok(1));
        assert!(Percentage::new(100.0).is_ok_and(Percentage::is_full));
        assert!(Percentage::new(100.5).is_err());
        assert!(Percentage::new(-1.0).is_err());
        assert!(Percentage::new(f64::NAN).is_err());
        assert!(Percentage::new(1.2345).is_err());
        assert_eq!(
            serde_json::to_string(&Percentage::new(12.5).unwrap()).unwrap(),
            "12.5"
        );
    }
}
