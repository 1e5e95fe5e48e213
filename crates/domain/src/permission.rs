//! Who may do what: the roles a caller may hold and the scopes a sharing agreement grants.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// What a person may do, as named in the token's `roles` claim.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Uploads and manages its own agency's extracts; views its partnership's grids.
    AgencyAnalyst,
    /// Everything analytical within its own partnership; prepares and approves releases.
    PartnershipAnalyst,
    /// A member of another partnership: reads only released, disclosure-controlled summaries of
    /// partnerships that share with its own.
    PartnerViewer,
    /// Manages reference data, agencies and sharing agreements; sees no case data.
    Admin,
    /// Reads the audit trail; sees no case data.
    Auditor,
    /// A member of the partnership's board: reads the board edition of its problem profiles
    /// and its self-assessment; sees no exact counts and changes nothing.
    BoardMember,
}

impl Role {
    /// Every role, in a stable order.
    pub const ALL: [Self; 6] = [
        Self::AgencyAnalyst,
        Self::PartnershipAnalyst,
        Self::PartnerViewer,
        Self::Admin,
        Self::Auditor,
        Self::BoardMember,
    ];

    /// The name used in tokens, the audit trail and documentation.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::AgencyAnalyst => "agency_analyst",
            Self::PartnershipAnalyst => "partnership_analyst",
            Self::PartnerViewer => "partner_viewer",
            Self::Admin => "admin",
            Self::Auditor => "auditor",
            Self::BoardMember => "board_member",
        }
    }

    /// Parses a role name; `None` for names this service does not know (an identity provider
    /// may put its own roles in the same claim).
    #[must_use]
    pub fn parse(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|role| role.as_str() == name)
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What a sharing agreement lets the recipient partnership's viewers read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Approved releases: disclosure-controlled tables at a coarse resolution.
    Releases,
    /// The sharer's records enter the recipient's cross-border (regional) hotspot analysis; the
    /// recipient's analysts see only hot and cold bins, computed with the sharer's counts
    /// perturbed.
    RegionalHotspots,
    /// The sharer appears with figures (its frozen, gated summaries of closed periods) in the
    /// recipient's comparisons; without it the sharer is listed without figures.
    Comparison,
}

impl Scope {
    /// Every scope, in a stable order.
    pub const ALL: [Self; 3] = [Self::Releases, Self::RegionalHotspots, Self::Comparison];

    /// The name used in the API and the database.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Releases => "releases",
            Self::RegionalHotspots => "regional_hotspots",
            Self::Comparison => "comparison",
        }
    }
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// The input named no known scope.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown scope `{0}`: expected releases, regional_hotspots or comparison")]
pub struct UnknownScope(pub String);

impl FromStr for Scope {
    type Err = UnknownScope;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|scope| scope.as_str() == s.trim())
            .ok_or_else(|| UnknownScope(s.chars().take(40).collect()))
    }
}

impl TryFrom<String> for Role {
    type Error = String;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        Self::parse(&name).ok_or_else(|| format!("`{name}` is not a role"))
    }
}

impl TryFrom<String> for Scope {
    type Error = UnknownScope;

    fn try_from(name: String) -> Result<Self, Self::Error> {
        name.parse()
    }
}
