//! The OpenAPI 3 document, generated from the handlers and types.

use actix_web::{HttpResponse, get};
use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::routes::{extracts, health, partnerships};

/// The service's OpenAPI description.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Safeguard Atlas",
        description = "Multi-agency, pseudonymised child sexual exploitation case data turned into \
                       H3 hotspot maps and disclosure-controlled regional summaries for local \
                       safeguarding children partnerships."
    ),
    paths(
        health::healthz,
        health::readyz,
        partnerships::list,
        partnerships::get,
        extracts::upload,
        extracts::get,
        extracts::rejections,
        extracts::withdraw,
        openapi_json
    ),
    components(schemas(ErrorBody, health::Status, partnerships::PartnershipView, partnerships::PartnershipList, extracts::BatchView)),
    tags(
        (name = "operations", description = "Health, readiness, metrics and this document"),
        (name = "partnerships", description = "Safeguarding partnerships and their geography"),
        (name = "extracts", description = "Agencies' uploads and the batches they become")
    )
)]
pub struct ApiDoc;

/// This document.
#[utoipa::path(tag = "operations", responses((status = 200, description = "OpenAPI 3 document")))]
#[get("/api/v1/openapi.json")]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
