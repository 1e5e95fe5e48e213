//! Kinds of agency that submit extracts.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The kind of organisation an agency is. The set follows the agencies named in statutory
/// guidance on multi-agency safeguarding: police, children's social care, health, education,
/// youth offending teams, probation, housing, youth services and the voluntary and community
/// sector.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum AgencyKind {
    /// A police force.
    Police,
    /// Children's social care of a local authority.
    SocialCare,
    /// An NHS trust, integrated care board or GP practice.
    Health,
    /// A school, college or local-authority education service.
    Education,
    /// A youth offending team.
    Yot,
    /// The probation service.
    Probation,
    /// A housing provider or housing department.
    Housing,
    /// Youth services.
    YouthServices,
    /// The voluntary and community sector.
    Vcs,
}

/// The input named no known agency kind.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown agency kind `{0}`: expected one of {list}", list = AgencyKind::names().join(", "))]
pub struct UnknownAgencyKind(pub String);

impl AgencyKind {
    /// Every kind, in a stable order.
    pub const ALL: [Self; 9] = [
        Self::Police,
        Self::SocialCare,
        Self::Health,
        Self::Education,
        Self::Yot,
        Self::Probation,
        Self::Housing,
        Self::YouthServices,
        Self::Vcs,
    ];

    /// The snake_case name used in files, URLs and the database.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Police => "police",
            Self::SocialCare => "social_care",
            Self::Health => "health",
            Self::Education => "education",
            Self::Yot => "yot",
            Self::Probation => "probation",
            Self::Housing => "housing",
            Self::YouthServices => "youth_services",
            Self::Vcs => "vcs",
        }
    }

    /// The names of every kind, for messages.
    #[must_use]
    pub fn names() -> Vec<&'static str> {
        Self::ALL.iter().map(|kind| kind.as_str()).collect()
    }
}

impl fmt::Display for AgencyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

impl FromStr for AgencyKind {
    type Err = UnknownAgencyKind;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let wanted = s.trim().to_ascii_lowercase().replace(['-', ' '], "_");
        Self::ALL
            .into_iter()
            .find(|kind| kind.as_str() == wanted)
            .ok_or_else(|| UnknownAgencyKind(s.chars().take(40).collect()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        for kind in AgencyKind::ALL {
            assert_eq!(kind.as_str().parse::<AgencyKind>().unwrap(), kind);
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
    }

    #[test]
    fn parsing_is_forgiving_about_case_and_separators() {
        assert_eq!(
            "Social Care".parse::<AgencyKind>().unwrap(),
            AgencyKind::SocialCare
        );
        assert_eq!(
            "youth-services".parse::<AgencyKind>().unwrap(),
            AgencyKind::YouthServices
        );
    }

    #[test]
    fn unknown_kind_lists_the_choices() {
        let err = "fire".parse::<AgencyKind>().unwrap_err().to_string();
        assert!(
            err.contains("`fire`") && err.contains("social_care"),
            "{err}"
        );
    }
}
