//! Making each request's audit entry durable before its response leaves.
//!
//! [`record`] is a middleware: when a handler that took an [`crate::auth::Authorized`] has
//! produced its response (allowed, denied or failed), it hands the request's entry to the
//! [`AuditWriter`] and waits until PostgreSQL has committed it. If that fails, the caller gets
//! 503 instead of the data. Changes append their entry in their own transaction instead.
//!
//! With group commit the writer is one task that takes every entry waiting, appends them in one
//! transaction and answers them all at the commit: concurrent requests share one WAL flush
//! instead of queueing for one each. When PostgreSQL refuses a group's transaction, its entries
//! are retried one by one, so an entry that cannot be stored fails only its own request.
//!
//! A handler that panics is answered 500 here and its entry appended as failed, so a request
//! that reached authentication is audited whatever happened to it.

use std::panic::AssertUnwindSafe;

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::StatusCode;
use actix_web::middleware::Next;
use actix_web::{HttpMessage as _, ResponseError as _, web};
use atlas_store::audit::{self, NewEntry};
use atlas_store::{Database, StoreError};
use futures_util::FutureExt as _;
use tokio::sync::{mpsc, oneshot};

use crate::ApiError;
use crate::auth::DraftSlot;
use atlas_app::settings::AuditSettings;

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
/// When PostgreSQL refuses the transaction (rather than being unreachable), each entry is
/// retried alone, so that only the one it refuses fails.
async fn group_commit(database: Database, mut receiver: mpsc::Receiver<Pending>, max_group: usize) {
    let mut group = Vec::with_capacity(max_group);
    while receiver.recv_many(&mut group, max_group).await > 0 {
        let entries: Vec<NewEntry> = group.iter().map(|pending| pending.entry.clone()).collect();
        match commit(&database, &entries).await {
            Ok(()) => {
                for pending in group.drain(..) {
                    let _ = pending.done.send(Ok(()));
                }
            }
            Err(err @ (StoreError::Query(_) | StoreError::Statement(_))) if group.len() > 1 => {
                tracing::warn!(error = %err, entries = group.len(), "an audit group was refused; appending its entries one by one");
                for pending in group.drain(..) {
                    let outcome = commit(&database, std::slice::from_ref(&pending.entry))
                        .await
                        .map_err(|err| err.to_string());
                    let _ = pending.done.send(outcome);
                }
            }
            Err(err) => {
                let reason = err.to_string();
                for pending in group.drain(..) {
                    let _ = pending.done.send(Err(reason.clone()));
                }
            }
        }
    }
}

/// The middleware: appends the request's audit entry, if it has one the handler did not
/// commit, before the response is sent. A handler that panics is answered 500, and its entry
/// appended as failed.
///
/// # Errors
/// Those of the inner service, once the entry is appended; 503 when it cannot be.
pub async fn record(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let slot = DraftSlot::default();
    request.extensions_mut().insert(slot.clone());
    let writer = request.app_data::<web::Data<AuditWriter>>().cloned();
    let response = match AssertUnwindSafe(next.call(request)).catch_unwind().await {
        Ok(Ok(response)) => response,
        Ok(Err(err)) => {
            append(writer, &slot, err.as_response_error().status_code()).await?;
            return Err(err);
        }
        Err(_) => {
            tracing::error!("a handler panicked; answering 500");
            append(writer, &slot, StatusCode::INTERNAL_SERVER_ERROR).await?;
            return Err(ApiError::Internal("a handler panicked".to_owned()).into());
        }
    };
    match append(writer, &slot, response.status()).await {
        Ok(()) => Ok(response.map_into_left_body()),
        Err(err) => {
            let (request, _) = response.into_parts();
            Ok(ServiceResponse::new(request, err.error_response()).map_into_right_body())
        }
    }
}

/// Appends the entry of the draft in `slot`, if the caller became known and the handler did
/// not commit it, for a response with `status`.
async fn append(
    writer: Option<web::Data<AuditWriter>>,
    slot: &DraftSlot,
    status: StatusCode,
) -> Result<(), ApiError> {
    let Some(entry) = slot.draft().and_then(|draft| draft.finish(status)) else {
        return Ok(());
    };
    match writer {
        Some(writer) => writer.write(entry).await,
        None => Err(ApiError::Internal(
            "no audit writer is configured".to_owned(),
        )),
    }
}

#[cfg(test)]
mod tests {
    use actix_web::middleware::from_fn;
    use actix_web::{App, HttpResponse, test, web};

    async fn panics() -> HttpResponse {
        panic!("a bug")
    }

    #[actix_web::test]
    async fn a_handler_that_panics_is_answered_500_and_the_worker_goes_on() {
        let app = test::init_service(
            App::new()
                .wrap(from_fn(super::record))
                .route("/panic", web::get().to(panics))
                .route(
                    "/ok",
                    web::get().to(|| async { HttpResponse::Ok().finish() }),
                ),
        )
        .await;
        let Err(err) =
            test::try_call_service(&app, test::TestRequest::get().uri("/panic").to_request()).await
        else {
            panic!("the panic must be an error");
        };
        assert_eq!(err.as_response_error().status_code(), 500);
        let ok = test::call_service(&app, test::TestRequest::get().uri("/ok").to_request()).await;
        assert_eq!(ok.status(), 200);
    }
}
