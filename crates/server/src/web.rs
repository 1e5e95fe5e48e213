//! The web application: its page and assets, embedded in the binary so that `cargo build`
//! alone gives a working server with no CDN or internet at run time (docs/web.md).

use std::path::PathBuf;

use actix_web::http::header;
use actix_web::{HttpResponse, get, web};
use atlas_app::demo::DemoUser;
use serde::Serialize;

use atlas_app::settings::{WebSettings, endpoint_origin, tile_origin};

use crate::ApiError;
use crate::identity::{KeyRing, ProviderMetadata};

/// The policy for the page: its own scripts, styles and API only; images also from the tile
/// server (`{tiles}`) and calls also to the identity provider's token endpoint (`{tokens}`) when
/// they are configured.
const PAGE_CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; \
    img-src 'self' data: blob:{tiles}; connect-src 'self'{tokens}; frame-ancestors 'none'; \
    base-uri 'none'; form-action 'self'";

/// Where the page's settings go in `index.html`.
const SETTINGS_MARK: &str = "<!-- atlas-settings -->";

/// Escapes text for an HTML attribute value.
fn attribute(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A `<meta>` element carrying one of the page's settings.
fn meta(name: &str, content: &str) -> String {
    format!(
        "<meta name=\"atlas-{name}\" content=\"{}\">",
        attribute(content)
    )
}

/// The application's page as this instance serves it: `index.html` with the base-map and
/// sign-in settings, and its Content Security Policy. The sign-in endpoints `[web.oidc]` leaves
/// out come from the provider's discovery document, once read.
#[derive(Debug, Clone)]
pub struct Page {
    settings: WebSettings,
}

/// Which endpoint of the identity provider the page uses, from `[web.oidc]` or else from the
/// provider's discovery document.
fn chosen(configured: Option<&String>, discovered: Option<&String>) -> Option<String> {
    configured
        .or(discovered)
        .filter(|url| endpoint_origin(url).is_ok())
        .cloned()
}

impl Page {
    /// The page for `settings` (validated: bad URLs are refused when settings load, and
    /// left out here).
    #[must_use]
    pub fn new(settings: &WebSettings) -> Self {
        Self {
            settings: settings.clone(),
        }
    }

    /// The page's HTML and Content Security Policy, with the endpoints `discovered` from the
    /// provider where `[web.oidc]` names none.
    #[must_use]
    pub fn render(&self, discovered: Option<&ProviderMetadata>) -> (String, String) {
        let settings = &self.settings;
        let mut metas = Vec::new();
        let mut tiles = String::new();
        if let Some(url) = &settings.tile_url
            && let Ok(origin) = tile_origin(url)
        {
            metas.push(meta("tile-url", url));
            metas.push(meta("tile-attribution", &settings.tile_attribution));
            tiles = format!(" {origin}");
        }
        let mut tokens = String::new();
        if let Some(oidc) = &settings.oidc
            && let Some(authorization) = chosen(
                oidc.authorization_endpoint.as_ref(),
                discovered.and_then(|found| found.authorization_endpoint.as_ref()),
            )
            && let Some(token) = chosen(
                oidc.token_endpoint.as_ref(),
                discovered.and_then(|found| found.token_endpoint.as_ref()),
            )
            && let Ok(origin) = endpoint_origin(&token)
        {
            metas.push(meta("oidc-authorization-endpoint", &authorization));
            metas.push(meta("oidc-token-endpoint", &token));
            metas.push(meta("oidc-client-id", &oidc.client_id));
            metas.push(meta("oidc-scope", &oidc.scope));
            if let Some(url) = chosen(
                oidc.end_session_endpoint.as_ref(),
                discovered.and_then(|found| found.end_session_endpoint.as_ref()),
            ) {
                metas.push(meta("oidc-end-session-endpoint", &url));
            }
            tokens = format!(" {origin}");
        }
        let html = std::str::from_utf8(include_bytes!("../web/index.html"))
            .unwrap_or_default()
            .replace(SETTINGS_MARK, &metas.join("\n  "));
        let csp = PAGE_CSP
            .replace("{tiles}", &tiles)
            .replace("{tokens}", &tokens);
        (html, csp)
    }
}

/// One embedded file.
struct Asset {
    name: &'static str,
    content_type: &'static str,
    body: &'static [u8],
}

/// Everything the page loads.
const ASSETS: [Asset; 16] = [
    Asset {
        name: "app.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/app.js"),
    },
    Asset {
        name: "core.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/core.js"),
    },
    Asset {
        name: "map.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/map.js"),
    },
    Asset {
        name: "upload.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/upload.js"),
    },
    Asset {
        name: "comparison.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/comparison.js"),
    },
    Asset {
        name: "assessment.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/assessment.js"),
    },
    Asset {
        name: "requests.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/requests.js"),
    },
    Asset {
        name: "profiles.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/profiles.js"),
    },
    Asset {
        name: "releases.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/releases.js"),
    },
    Asset {
        name: "partner.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/partner.js"),
    },
    Asset {
        name: "audit.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/audit.js"),
    },
    Asset {
        name: "oidc.js",
        content_type: "text/javascript; charset=utf-8",
        body: include_bytes!("../web/oidc.js"),
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
#[tracing::instrument(skip_all)]
pub async fn index(page: web::Data<Page>, keys: web::Data<KeyRing>) -> HttpResponse {
    let (html, csp) = page.render(keys.status().metadata.as_ref());
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, csp))
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(html)
}

/// An embedded asset by name.
#[get("/assets/{name}")]
#[tracing::instrument(skip_all)]
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
#[tracing::instrument(skip_all)]
pub async fn demo_users(users: web::Data<DemoUsers>) -> Result<HttpResponse, ApiError> {
    let not_demo = || ApiError::NotFound("this is not a demo instance".to_owned());
    let path = users.0.as_ref().ok_or_else(not_demo)?;
    let text = std::fs::read_to_string(path)
        .map_err(|err| ApiError::Internal(format!("{}: {err}", path.display())))?;
    let users: Vec<DemoUser> = serde_json::from_str(&text)
        .map_err(|err| ApiError::Internal(format!("{}: {err}", path.display())))?;
    Ok(HttpResponse::Ok().json(DemoUserList { users }))
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;
    use std::path::Path;

    use super::ASSETS;

    /// The names of `text`'s references to other assets: `/assets/NAME` and `from './NAME'`.
    fn referenced(text: &str) -> Vec<String> {
        let after = |marker: &str| {
            text.split(marker)
                .skip(1)
                .filter_map(|rest| {
                    let name: String = rest
                        .chars()
                        .take_while(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_'))
                        .collect();
                    (!name.is_empty()).then_some(name)
                })
                .collect::<Vec<_>>()
        };
        [after("/assets/"), after("from './")].concat()
    }

    #[test]
    fn every_file_of_web_is_embedded_and_every_reference_is_to_an_embedded_asset() {
        let embedded: BTreeSet<&str> = ASSETS.iter().map(|asset| asset.name).collect();
        let web = Path::new(env!("CARGO_MANIFEST_DIR")).join("web");
        for entry in std::fs::read_dir(&web).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_str().unwrap().to_owned();
            if path.is_dir() || name == "index.html" {
                continue;
            }
            assert!(
                embedded.contains(name.as_str()),
                "web/{name} is not embedded"
            );
            for reference in referenced(&std::fs::read_to_string(&path).unwrap()) {
                assert!(
                    embedded.contains(reference.as_str()),
                    "web/{name} refers to {reference}, which is not embedded"
                );
            }
        }
        let page = std::fs::read_to_string(web.join("index.html")).unwrap();
        let on_page = referenced(&page);
        assert!(on_page.len() >= 4, "{on_page:?}");
        for reference in on_page {
            assert!(
                embedded.contains(reference.as_str()),
                "index.html refers to {reference}, which is not embedded"
            );
        }
        for vendored in ["leaflet.js", "leaflet.css"] {
            assert!(web.join("vendor/leaflet").join(vendored).is_file());
            assert!(embedded.contains(vendored));
        }
    }
}
