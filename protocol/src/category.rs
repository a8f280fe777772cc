//! What happened: the closed list of report categories and their wire codes.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// The kind of incident a report describes.
///
/// The wire code of each category is fixed forever (see `docs/protocol.md`);
/// new categories get new codes, and a code this version does not know is
/// rejected rather than mapped to something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Category {
    /// A diffuse feeling of being unsafe.
    FeelingUnsafe,
    /// Harassment (comments, insistence, intimidation).
    Harassment,
    /// Insults, threats and other verbal aggression.
    VerbalAggression,
    /// Physical aggression.
    PhysicalAggression,
    /// Sexual aggression.
    SexualAggression,
    /// Indecent exposure.
    Exhibitionism,
    /// Being followed.
    Following,
    /// A place that feels unsafe because it is badly lit.
    PoorLighting,
    /// Another hazard in the environment.
    OtherHazard,
}

/// A category name or wire code this version does not know.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown category {0:?}; expected one of: {list}", list = Category::NAMES.join(", "))]
pub struct UnknownCategory(pub String);

impl Category {
    /// Every category, in wire-code order.
    pub const ALL: [Category; 9] = [
        Category::FeelingUnsafe,
        Category::Harassment,
        Category::VerbalAggression,
        Category::PhysicalAggression,
        Category::SexualAggression,
        Category::Exhibitionism,
        Category::Following,
        Category::PoorLighting,
        Category::OtherHazard,
    ];

    /// The names of every category as used in JSON and on the command line.
    pub const NAMES: [&'static str; 9] = [
        "feeling_unsafe",
        "harassment",
        "verbal_aggression",
        "physical_aggression",
        "sexual_aggression",
        "exhibitionism",
        "following",
        "poor_lighting",
        "other_hazard",
    ];

    /// The one-byte wire code (1..=9).
    pub fn code(self) -> u8 {
        self as u8 + 1
    }

    /// The category of a wire code, if it is known.
    pub fn from_code(code: u8) -> Option<Category> {
        Self::ALL.get(usize::from(code).checked_sub(1)?).copied()
    }

    /// The snake_case name used in JSON and on the command line.
    pub fn as_str(self) -> &'static str {
        Self::NAMES[self as usize]
    }
}

impl fmt::Display for Category {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Category {
    type Err = UnknownCategory;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| Self::ALL[i])
            .ok_or_else(|| UnknownCategory(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_and_names_round_trip() {
        for (i, c) in Category::ALL.iter().enumerate() {
            assert_eq!(usize::from(c.code()), i + 1);
            assert_eq!(Category::from_code(c.code()), Some(*c));
            assert_eq!(c.as_str().parse::<Category>(), Ok(*c));
            let json = format!("\"{}\"", c.as_str());
            assert_eq!(
                serde_json::to_string(c).ok().as_deref(),
                Some(json.as_str())
            );
        }
    }

    #[test]
    fn unknown_codes_and_names_are_rejected() {
        assert_eq!(Category::from_code(0), None);
        assert_eq!(Category::from_code(10), None);
        assert_eq!(Category::from_code(255), None);
        assert!("Harassment".parse::<Category>().is_err());
        assert!("theft".parse::<Category>().is_err());
    }
}
