//! Administration: agencies, sharing agreements and registered users (admins only; every
//! change audited in its own transaction).

use std::collections::BTreeSet;

use actix_web::{HttpResponse, get, post, put, web};
use atlas_access::{Role, Scope};
use atlas_domain::{AgencyKind, GssCode};
use atlas_store::{Database, agencies, agreements, users};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::dates;
use crate::guards::{ManageAgencies, ManageAgreements, ManageUsers};

/// An agency as administrators see it.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyView {
    /// Identifier: the `agency` claim of its staff's tokens.
    pub id: Uuid,
    /// Name.
    pub name: String,
    /// Kind of organisation.
    pub kind: AgencyKind,
    /// GSS codes of the partnerships it serves.
    pub partnerships: Vec<String>,
}

impl From<agencies::Agency> for AgencyView {
    fn from(agency: agencies::Agency) -> Self {
        Self {
            id: agency.id,
            name: agency.name,
            kind: agency.kind,
            partnerships: agency
                .partnerships
                .iter()
                .map(ToString::to_string)
                .collect(),
        }
    }
}

/// Every agency.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgencyList {
    /// Sorted by name.
    pub agencies: Vec<AgencyView>,
}

/// A new agency.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgency {
    /// Name, unique within its kind.
    pub name: String,
    /// Kind of organisation.
    pub kind: AgencyKind,
    /// GSS codes of the partnerships it serves (at least one).
    #[schema(value_type = Vec<String>)]
    pub partnerships: Vec<GssCode>,
}

/// Lists agencies.
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = AgencyList), (status = 401, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/admin/agencies")]
#[tracing::instrument(skip_all)]
pub async fn list_agencies(
    authorized: Authorized<ManageAgencies>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let agencies: Vec<AgencyView> = agencies::list(&mut conn)
        .await?
        .into_iter()
        .map(AgencyView::from)
        .collect();
    authorized.returned(agencies.len());
    Ok(HttpResponse::Ok().json(AgencyList { agencies }))
}

/// Registers an agency.
#[utoipa::path(tag = "admin", security(("bearer" = [])), request_body = NewAgency, responses((status = 201, body = AgencyView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/admin/agencies")]
#[tracing::instrument(skip_all)]
pub async fn add_agency(
    authorized: Authorized<ManageAgencies>,
    database: web::Data<Database>,
    body: Deferred<web::Json<NewAgency>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    authorized.note("name", &body.name);
    authorized.note("kind", body.kind);
    let mut conn = database.connection().await?;
    let agency = agencies::add(
        &mut conn,
        &body.name,
        body.kind,
        &body.partnerships,
        &authorized.change_entry(),
    )
    .await?;
    authorized.committed();
    Ok(HttpResponse::Created().json(AgencyView::from(agency)))
}

/// A sharing agreement.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementView {
    /// Identifier.
    pub id: Uuid,
    /// The partnership that shares.
    pub from: String,
    /// The partnership whose viewers may read.
    pub to: String,
    /// What may be read.
    pub scopes: Vec<String>,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force (open-ended when absent).
    pub valid_to: Option<NaiveDate>,
    /// When it was revoked.
    pub revoked_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Who created it.
    pub created_by: String,
}

impl From<agreements::Agreement> for AgreementView {
    fn from(agreement: agreements::Agreement) -> Self {
        Self {
            id: agreement.id,
            from: agreement.from.to_string(),
            to: agreement.to.to_string(),
            scopes: agreement.scopes.iter().map(ToString::to_string).collect(),
            valid_from: agreement.valid_from,
            valid_to: agreement.valid_to,
            revoked_at: agreement.revoked_at,
            created_by: agreement.created_by,
        }
    }
}

/// Every agreement.
#[derive(Debug, Serialize, ToSchema)]
pub struct AgreementList {
    /// Newest first.
    pub agreements: Vec<AgreementView>,
}

/// A new agreement.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAgreement {
    /// The partnership that shares.
    #[schema(value_type = String, example = "E10000017")]
    pub from: GssCode,
    /// The partnership whose viewers may read.
    #[schema(value_type = String, example = "E06000009")]
    pub to: GssCode,
    /// What may be read: `releases`, `regional_hotspots`, `comparison`.
    pub scopes: Vec<String>,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force.
    pub valid_to: Option<NaiveDate>,
}

/// Lists agreements.
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = AgreementList), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/admin/agreements")]
#[tracing::instrument(skip_all)]
pub async fn list_agreements(
    authorized: Authorized<ManageAgreements>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let agreements: Vec<AgreementView> = agreements::list(&mut conn)
        .await?
        .into_iter()
        .map(AgreementView::from)
        .collect();
    authorized.returned(agreements.len());
    Ok(HttpResponse::Ok().json(AgreementList { agreements }))
}

/// Creates an agreement: `from` shares the given scopes with `to`.
#[utoipa::path(tag = "admin", security(("bearer" = [])), request_body = NewAgreement, responses((status = 201, body = AgreementView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[post("/api/v1/admin/agreements")]
#[tracing::instrument(skip_all)]
pub async fn add_agreement(
    authorized: Authorized<ManageAgreements>,
    database: web::Data<Database>,
    body: Deferred<web::Json<NewAgreement>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    dates::check("valid_from", body.valid_from)?;
    if let Some(valid_to) = body.valid_to {
        dates::check("valid_to", valid_to)?;
    }
    let scopes = body
        .scopes
        .iter()
        .map(|scope| scope.parse::<Scope>())
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    authorized.note("from", &body.from);
    authorized.note("to", &body.to);
    authorized.note(
        "scopes",
        scopes
            .iter()
            .map(|scope| scope.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    let terms = agreements::Terms {
        from: body.from.clone(),
        to: body.to.clone(),
        scopes,
        valid_from: body.valid_from,
        valid_to: body.valid_to,
    };
    let mut conn = database.connection().await?;
    let agreement = agreements::create(
        &mut conn,
        &terms,
        &authorized.principal().subject,
        &authorized.change_entry(),
    )
    .await?;
    authorized.committed();
    Ok(HttpResponse::Created().json(AgreementView::from(agreement)))
}

/// Revokes an agreement: it stops granting access at once.
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("id" = Uuid, Path, description = "Agreement id")), responses((status = 200, body = AgreementView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody), (status = 409, body = crate::error::ErrorBody)))]
#[post("/api/v1/admin/agreements/{id}/revoke")]
#[tracing::instrument(skip_all)]
pub async fn revoke_agreement(
    authorized: Authorized<ManageAgreements>,
    database: web::Data<Database>,
    id: Deferred<web::Path<Uuid>>,
) -> Result<HttpResponse, ApiError> {
    let id = id.into_inner()?;
    let mut conn = database.connection().await?;
    let agreement = agreements::revoke(&mut conn, *id, &authorized.change_entry()).await?;
    authorized.committed();
    Ok(HttpResponse::Ok().json(AgreementView::from(agreement)))
}

/// A registered user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    /// The tokens' `sub`.
    pub subject: String,
    /// The partnership the person belongs to.
    pub partnership: String,
    /// The agency the person works for.
    pub agency: Option<Uuid>,
    /// The roles the person may use here.
    pub roles: Vec<String>,
    /// When the registration was disabled.
    pub disabled_at: Option<chrono::DateTime<chrono::Utc>>,
    /// Who last changed it.
    pub updated_by: String,
}

impl From<users::Registration> for UserView {
    fn from(registration: users::Registration) -> Self {
        Self {
            subject: registration.subject,
            partnership: registration.partnership.to_string(),
            agency: registration.agency,
            roles: registration.roles.iter().map(ToString::to_string).collect(),
            disabled_at: registration.disabled_at,
            updated_by: registration.updated_by,
        }
    }
}

/// Every registered user.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserList {
    /// Sorted by subject.
    pub users: Vec<UserView>,
}

/// A registration: which partnership, agency and roles a subject's tokens may carry.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRegistration {
    /// The partnership the person belongs to.
    #[schema(value_type = String, example = "E10000017")]
    pub partnership: GssCode,
    /// The agency the person works for (agency analysts).
    pub agency: Option<Uuid>,
    /// Role names: agency_analyst, partnership_analyst, partner_viewer, admin, auditor, board_member.
    pub roles: Vec<String>,
}

/// Lists registered users.
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = UserList), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/admin/users")]
#[tracing::instrument(skip_all)]
pub async fn list_users(
    authorized: Authorized<ManageUsers>,
    database: web::Data<Database>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let users: Vec<UserView> = users::list(&mut conn)
        .await?
        .into_iter()
        .map(UserView::from)
        .collect();
    authorized.returned(users.len());
    Ok(HttpResponse::Ok().json(UserList { users }))
}

/// Registers a subject, or replaces (and re-enables) its registration.
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("subject" = String, Path, description = "The tokens' sub")), request_body = NewRegistration, responses((status = 200, body = UserView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[put("/api/v1/admin/users/{subject}")]
#[tracing::instrument(skip_all)]
pub async fn register_user(
    authorized: Authorized<ManageUsers>,
    database: web::Data<Database>,
    subject: web::Path<String>,
    body: Deferred<web::Json<NewRegistration>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?;
    let roles = body
        .roles
        .iter()
        .map(|name| {
            Role::parse(name).ok_or_else(|| ApiError::BadRequest(format!("unknown role `{name}`")))
        })
        .collect::<Result<Vec<_>, _>>()?;
    authorized.note("partnership", &body.partnership);
    authorized.note(
        "roles",
        roles
            .iter()
            .map(|role| role.as_str())
            .collect::<Vec<_>>()
            .join(","),
    );
    let mut conn = database.connection().await?;
    let registration = users::register(
        &mut conn,
        &subject,
        &body.partnership,
        body.agency,
        &roles,
        &authorized.change_entry(),
    )
    .await?;
    authorized.committed();
    Ok(HttpResponse::Ok().json(UserView::from(registration)))
}

/// Disables a registration: the subject is refused everything at once.
#[utoipa::path(tag = "admin", security(("bearer" = [])), params(("subject" = String, Path, description = "The tokens' sub")), responses((status = 200, body = UserView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[post("/api/v1/admin/users/{subject}/disable")]
#[tracing::instrument(skip_all)]
pub async fn disable_user(
    authorized: Authorized<ManageUsers>,
    database: web::Data<Database>,
    subject: web::Path<String>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let registration = users::disable(&mut conn, &subject, &authorized.change_entry()).await?;
    authorized.committed();
    Ok(HttpResponse::Ok().json(UserView::from(registration)))
}
