//! The caller as the policy sees it.

use std::collections::BTreeSet;

use atlas_domain::GssCode;
pub use atlas_domain::{Role, Scope, UnknownScope};
use uuid::Uuid;

/// An authenticated caller: who, for which partnership and agency, with which roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// The token's `sub`: a stable identifier of the person or service.
    pub subject: String,
    /// The partnership the caller belongs to.
    pub partnership: GssCode,
    /// The agency the caller works for (agency staff only).
    pub agency: Option<Uuid>,
    /// The caller's roles; never empty.
    pub roles: BTreeSet<Role>,
}

impl Principal {
    /// Whether the caller holds `role`.
    #[must_use]
    pub fn has(&self, role: Role) -> bool {
        self.roles.contains(&role)
    }

    /// The roles as names, for the audit trail.
    #[must_use]
    pub fn role_names(&self) -> Vec<String> {
        self.roles
            .iter()
            .map(|role| role.as_str().to_owned())
            .collect()
    }
}
