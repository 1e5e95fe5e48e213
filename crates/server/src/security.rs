//! Security headers on every response, and refusing plain HTTP where TLS is required.

use actix_web::body::{EitherBody, MessageBody};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::http::header::{self, HeaderValue};
use actix_web::middleware::Next;
use actix_web::{HttpResponse, ResponseError as _, web};

use crate::ApiError;
use crate::tls::OverTls;

/// Whether plain-HTTP requests are refused (production).
#[derive(Debug, Clone, Copy)]
pub struct TransportPolicy {
    /// Refuse everything but the health checks over plain HTTP.
    pub require_tls: bool,
}

/// The paths plain HTTP may reach when TLS is required: load-balancer health checks.
const PLAIN_PATHS: [&str; 2] = ["/healthz", "/readyz"];

/// The policy for API responses, which are never rendered as documents.
const API_CSP: &str =
    "default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// The middleware: refuses plain HTTP when TLS is required, then sets the headers.
///
/// # Errors
/// Those of the inner service.
pub async fn harden(
    request: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let over_tls = request.conn_data::<OverTls>().is_some();
    let require_tls = request
        .app_data::<web::Data<TransportPolicy>>()
        .is_some_and(|policy| policy.require_tls);
    if require_tls && !over_tls && !PLAIN_PATHS.contains(&request.path()) {
        let refusal: HttpResponse = ApiError::HttpsRequired.error_response();
        let mut response = request.into_response(refusal).map_into_right_body();
        set_headers(response.headers_mut(), false, true);
        return Ok(response);
    }
    let is_api = request.path().starts_with("/api/");
    let mut response = next.call(request).await?.map_into_left_body();
    set_headers(response.headers_mut(), over_tls, is_api);
    Ok(response)
}

fn set_headers(headers: &mut header::HeaderMap, over_tls: bool, is_api: bool) {
    let mut set = |name: header::HeaderName, value: &'static str| {
        if !headers.contains_key(&name) {
            headers.insert(name, HeaderValue::from_static(value));
        }
    };
    set(header::X_CONTENT_TYPE_OPTIONS, "nosniff");
    set(header::X_FRAME_OPTIONS, "DENY");
    set(header::REFERRER_POLICY, "no-referrer");
    set(header::CONTENT_SECURITY_POLICY, API_CSP);
    set(
        header::HeaderName::from_static("cross-origin-resource-policy"),
        "same-origin",
    );
    if over_tls {
        set(
            header::STRICT_TRANSPORT_SECURITY,
            "max-age=31536000; includeSubDomains",
        );
    }
    if is_api {
        set(header::CACHE_CONTROL, "no-store");
    }
}
