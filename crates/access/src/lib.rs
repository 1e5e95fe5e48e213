//! Who may do what to which partnership's data.
//!
//! This crate will hold bearer-token verification, the access policy (one pure function of
//! principal, action and resource) and audit events; see issue 4 and docs/architecture.md. It
//! exists now so the workspace has its final shape and dependency direction.
