//! One access-log line per request (target `atlas_server::access`, level `info`): method, path
//! (never the query string), status, time taken and the request id that the response's
//! `x-request-id` header and the audit entry carry. Who asked is in the audit trail, not here.

use std::time::Instant;

use actix_web::HttpMessage as _;
use actix_web::body::MessageBody;
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use tracing_actix_web::RequestId;

/// The middleware: logs the request once its response is ready (an error answered by a
/// handler, or by the framework, is logged with the status it was answered with).
///
/// # Errors
/// Those of the inner service, passed on.
pub async fn log(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let started = Instant::now();
    let method = request.method().clone();
    let path = request.path().to_owned();
    let request_id = request
        .extensions()
        .get::<RequestId>()
        .map(ToString::to_string)
        .unwrap_or_default();
    let answered = next.call(request).await;
    let status = match &answered {
        Ok(response) => response.status(),
        Err(err) => err.as_response_error().status_code(),
    };
    tracing::info!(
        target: "atlas_server::access",
        %method,
        %path,
        status = status.as_u16(),
        elapsed_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        %request_id,
        "request"
    );
    answered
}
