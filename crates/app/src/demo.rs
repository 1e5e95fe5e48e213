//! The demo's users, as `atlas demo` lists them in its users file and the sign-in page of a
//! demo instance offers them.

use serde::{Deserialize, Serialize};

/// One demo user as the sign-in page offers it.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
pub struct DemoUser {
    /// A short name, such as `lancashire-analyst`.
    pub id: String,
    /// Who this is, such as "partnership analyst, Lancashire (E10000017)".
    pub describe: String,
    /// A development token for them.
    pub token: String,
}
