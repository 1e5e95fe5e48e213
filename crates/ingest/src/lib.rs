//! Turns files into validated data, without touching a database or the network.
//!
//! [`reference`] reads ONS-style reference geography: partnership boundaries become H3
//! coverages, and a neighbours table becomes validated pairs of GSS codes.

pub mod reference;
