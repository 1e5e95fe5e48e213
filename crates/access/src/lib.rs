//! Who may do what to which partnership's data.
//!
//! - [`token`] verifies bearer JWTs (algorithms pinned per key, required claims, size limit)
//!   into a [`Principal`], and signs development tokens;
//! - [`keys`] makes development key pairs and their JWKS;
//! - [`policy::decide`] is the whole access policy: one pure function of principal, action and
//!   resource, answering allow or a reasoned deny; [`policy::authorize`] says, with an allow,
//!   which case records the caller may read ([`RecordScope`]: agency staff their own agency's
//!   only), and [`policy::serving`] holds a token's agency to the partnerships it serves.
//!   docs/access.md prints its matrix.
//!
//! Nothing here performs I/O: callers load the facts a decision needs (a batch's agency, the
//! sharing agreements in force) and pass them in.

pub mod keys;
pub mod policy;
mod principal;
pub mod token;

pub use policy::{
    Action, Decision, Denial, RecordScope, Registration, Resource, authorize, constrain, decide,
    serving,
};
pub use principal::{Principal, Role, Scope, UnknownScope};
