//! Who is calling. Until bearer tokens arrive with the access-control work, a development
//! identity is read from headers when `auth.dev_headers` is on; otherwise every request that
//! needs an identity is refused with 401.

use std::future::{Ready, ready};

use actix_web::{FromRequest, HttpRequest, web};
use uuid::Uuid;

use crate::ApiError;
use crate::settings::AuthSettings;

/// A member of an agency's staff, as far as the server can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgencyUser {
    /// The agency the caller works for.
    pub agency_id: Uuid,
    /// The caller's name or identifier, recorded as the uploader.
    pub subject: String,
}

impl FromRequest for AgencyUser {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        ready(agency_user(request))
    }
}

fn agency_user(request: &HttpRequest) -> Result<AgencyUser, ApiError> {
    let dev_headers = request
        .app_data::<web::Data<AuthSettings>>()
        .is_some_and(|auth| auth.dev_headers);
    if !dev_headers {
        return Err(ApiError::Unauthorized(
            "authentication is required and no identity provider is configured yet".to_owned(),
        ));
    }
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .map(str::trim)
    };
    let agency_id = header("x-atlas-agency")
        .ok_or_else(|| ApiError::Unauthorized("the x-atlas-agency header is missing".to_owned()))?
        .parse::<Uuid>()
        .map_err(|_| {
            ApiError::Unauthorized("the x-atlas-agency header is not an agency id".to_owned())
        })?;
    let subject = header("x-atlas-user")
        .filter(|user| !user.is_empty())
        .unwrap_or("development user");
    Ok(AgencyUser {
        agency_id,
        subject: subject.chars().take(200).collect(),
    })
}
