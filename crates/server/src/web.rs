//! The web application: its page and assets, embedded in the binary so that `cargo build`
//! alone gives a working server with no CDN or internet at run time (docs/web.md).

use std::path::PathBuf;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use serde::{Deserialize, Serialize};

use crate::ApiError;

/// The policy for the page: its own scripts, styles and API only.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; \
    form-action 'self'";

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Everything the page loads.
const ASSETS: [Asset; 5] = [
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        name: "app.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/app.css"),
    },
    Asset {
        name: "leaflet.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/vendor/leaflet/leaflet.js"),
    },
    Asset {
        name: "leaflet.css",
        content_type: "text/css; charset=utf-8",
        body: include_bytes!("../web/vendor/leaflet/leaflet.css"),
    },
    Asset {
        name: "leaflet-LICENSE.txt",
        content_type: "text/plain; charset=utf-8",
        body: include_bytes!("../web/vendor/leaflet/LICENSE"),
    },
];

/// The application's page.
#[get("/")]
pub async fn index() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, PAGE_CSP))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(&include_bytes!("../web/index.html")[..])
}

/// An embedded asset by name.
#[get("/assets/{name}")]
pub async fn asset(name: web::Path<String>) -> Result<HttpResponse, ApiError> {
    let asset = ASSETS
        .iter()
        .find(|asset| asset.name == name.as_str())
        .ok_or_else(|| ApiError::NotFound(format!("no asset is called `{name}`")))?;
    Ok(HttpResponse::Ok()
        .content_type(asset.content_type)
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(asset.body))
}

/// Where the demo's users are listed, when this is a demo instance.
#[derive(Debug, Clone)]
pub struct DemoUsers(pub Option<PathBuf>);

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

/// The demo users offered by the sign-in page.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct DemoUserList {
    /// In the demo's order.
    pub users: Vec<DemoUser>,
}

/// The demo's users and their development tokens, for the sign-in page of a demo instance
/// (`auth.dev_signing` with `auth.demo_users_file`); 404 on any other instance.
#[utoipa::path(tag = "operations", responses((status = 200, body = DemoUserList), (status = 404, body = crate::error::ErrorBody)))]
#[get("/api/v1/demo/users")]
pub async fn demo_users(users: web::Data<DemoUsers>) -> Result<HttpResponse, ApiError> {
    let not_demo = || ApiError::NotFound("this is not a demo instance".to_owned());
    let path = users.0.as_ref().ok_or_else(not_demo)?;
    let text = std::fs::read_to_string(path)
        .map_err(|err| ApiError::Internal(format!("{}: {err}", path.display())))?;
    let users: Vec<DemoUser> = serde_json::from_str(&text)
        .map_err(|err| ApiError::Internal(format!("{}: {err}", path.display())))?;
    Ok(HttpResponse::Ok().json(DemoUserList { users }))
}
