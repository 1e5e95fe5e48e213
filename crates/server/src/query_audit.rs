//! Query auditing: the second line of defence behind the publication gate. Every answer that
//! carries another partnership's figures is marked `cross_boundary` in its audit entry; when
//! one subject has asked more than [`FLAG_AFTER`] distinct such questions in a day, the entry is
//! flagged (`query_audit` in its parameters), `atlas_cross_boundary_flags_total` counts it on
//! `/metrics` and a warning is logged (docs/privacy.md, "Query auditing"). The count comes from
//! the audit trail itself, so it spans every server process.

use atlas_store::{Database, audit};
use chrono::{Duration, Utc};
use prometheus::IntCounter;

use crate::ApiError;
use crate::auth::{Authorized, Guard};

/// Distinct cross-boundary questions one subject may ask in 24 hours before they are flagged.
pub const FLAG_AFTER: i64 = 40;

/// The flag counter, registered with the metrics registry.
#[derive(Clone)]
pub struct QueryAudit {
    flags: IntCounter,
}

impl QueryAudit {
    /// Registers the counter with `registry`.
    ///
    /// # Errors
    /// When the registry refuses it (a second registration).
    pub fn register(registry: &prometheus::Registry) -> Result<Self, prometheus::Error> {
        let flags = IntCounter::new(
            "atlas_cross_boundary_flags_total",
            "Cross-boundary questions flagged by query auditing",
        )?;
        registry.register(Box::new(flags.clone()))?;
        Ok(Self { flags })
    }

    /// Marks the answer `authorized` is about to give as cross-boundary (`kind`: comparison,
    /// regional_hotspots, national_export) and flags it when its subject has asked too many.
    ///
    /// # Errors
    /// [`ApiError`] when the audit trail cannot be read.
    pub async fn check<G: Guard>(
        &self,
        database: &Database,
        authorized: &Authorized<G>,
        kind: &str,
    ) -> Result<(), ApiError> {
        authorized.note("cross_boundary", kind);
        let subject = &authorized.principal().subject;
        let asked = {
            let mut conn = database.connection().await?;
            audit::cross_boundary_questions(&mut conn, subject, Utc::now() - Duration::hours(24))
                .await?
        };
        if asked >= FLAG_AFTER {
            self.flags.inc();
            tracing::warn!(
                %subject,
                asked,
                "query auditing: many distinct cross-boundary questions from one subject"
            );
            authorized.note(
                "query_audit",
                format!("flagged: {asked} earlier distinct cross-boundary questions in 24 hours"),
            );
        }
        Ok(())
    }
}
