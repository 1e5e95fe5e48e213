//! Making each request's audit entry durable before its response leaves.
//!
//! [`record`] is a middleware: when a handler that took an [`crate::auth::Authorized`] has
//! produced its response (allowed, denied or failed), it hands the request's entry to the
//! [`AuditWriter`] and waits until PostgreSQL has committed it. If that fails, the caller gets
//! 503 instead of the data. Changes append their entry in their own transaction instead.
//!
//! With group commit the writer is one task that takes every entry waiting, appends them in one
//! transaction and answers them all at the commit: concurrent requests share one WAL flush
//! instead of queueing for one each.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError as _, web};
use atlas_store::audit::{self, NewEntry};
use atlas_store::{Database, StoreError};
use tokio::sync::{mpsc, oneshot};

use crate::ApiError;
use crate::auth::AuditDraft;
use crate::settings::AuditSettings;

/// How long entries may wait for the writer before requests are refused (queue length).
const QUEUE: usize = 16_384;

/// Appends audit entries, grouping concurrent ones into one commit when configured to.
pub struct AuditWriter {
    mode: Mode,
}

enum Mode {
    Group(mpsc::Sender<Pending>),
    PerRequest(Database),
}

struct Pending {
    entry: NewEntry,
    done: oneshot::Sender<Result<(), String>>,
}

impl AuditWriter {
    /// Starts the writer (a task on the current runtime, with group commit).
    #[must_use]
    pub fn start(database: Database, settings: &AuditSettings) -> Self {
        if !settings.group_commit {
            return Self {
                mode: Mode::PerRequest(database),
            };
        }
        let (sender, receiver) = mpsc::channel(QUEUE);
        tokio::spawn(group_commit(database, receiver, settings.max_group.max(1)));
        Self {
            mode: Mode::Group(sender),
        }
    }

    /// Appends `entry` and returns once it is committed.
    ///
    /// # Errors
    /// [`ApiError::Unavailable`] when it could not be made durable.
    pub async fn write(&self, entry: NewEntry) -> Result<(), ApiError> {
        let unavailable = |reason: &str| {
            tracing::error!(%reason, "audit entry not written; refusing the response");
            ApiError::Unavailable(
                "the audit trail cannot be written, so nothing can be returned; try again shortly"
                    .to_owned(),
            )
        };
        match &self.mode {
            Mode::PerRequest(database) => commit(database, std::slice::from_ref(&entry))
                .await
                .map_err(|err| unavailable(&err.to_string())),
            Mode::Group(sender) => {
                let (done, outcome) = oneshot::channel();
                sender
                    .send(Pending { entry, done })
                    .await
                    .map_err(|_| unavailable("the audit writer has stopped"))?;
                outcome
                    .await
                    .map_err(|_| unavailable("the audit writer has stopped"))?
                    .map_err(|err| unavailable(&err))
            }
        }
    }
}

async fn commit(database: &Database, entries: &[NewEntry]) -> Result<(), StoreError> {
    let mut conn = database.connection().await?;
    audit::append_committed(&mut conn, entries).await
}

/// Takes everything waiting (up to `max_group`), commits it as one transaction, answers each.
async fn group_commit(database: Database, mut receiver: mpsc::Receiver<Pending>, max_group: usize) {
    let mut group = Vec::with_capacity(max_group);
    while receiver.recv_many(&mut group, max_group).await > 0 {
        let entries: Vec<NewEntry> = group.iter().map(|pending| pending.entry.clone()).collect();
        let outcome = commit(&database, &entries)
            .await
            .map_err(|err| err.to_string());
        for pending in group.drain(..) {
            let _ = pending.done.send(outcome.clone());
        }
    }
}

/// The middleware: appends the request's audit entry, if it has one the handler did not
/// commit, before the response is sent.
///
/// # Errors
/// Those of the inner service.
pub async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let response = next.call(request).await?;
    let entry = response
        .request()
        .extensions()
        .get::<AuditDraft>()
        .and_then(|draft| draft.finish(response.status()));
    let Some(entry) = entry else {
        return Ok(response.map_into_left_body());
    };
    let writer = response
        .request()
        .app_data::<web::Data<AuditWriter>>()
        .cloned();
    let written = match writer {
        Some(writer) => writer.write(entry).await,
        None => Err(ApiError::Internal(
            "no audit writer is configured".to_owned(),
        )),
    };
    match written {
        Ok(()) => Ok(response.map_into_left_body()),
        Err(err) => {
            let (request, _) = response.into_parts();
            Ok(ServiceResponse::new(request, err.error_response()).map_into_right_body())
        }
    }
}
