//! Administration: agencies and sharing agreements (admins only; every change audited in its
//! own transaction).

use std::collections::BTreeSet;

use actix_web::{HttpResponse, get, post, web};
use atlas_access::Scope;
use atlas_domain::{AgencyKind, GssCode};
use atlas_store::{Database, agencies, agreements};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::ApiError;
use crate::auth::Authorized;
use crate::guards::{ManageAgencies, ManageAgreements};

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
            partnerships: agency.partnerships,
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
pub async fn add_agency(
    authorized: Authorized<ManageAgencies>,
    database: web::Data<Database>,
    body: web::Json<NewAgency>,
) -> Result<HttpResponse, ApiError> {
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
            from: agreement.from,
            to: agreement.to,
            scopes: agreement.scopes,
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
    /// What may be read: `releases`.
    pub scopes: Vec<String>,
    /// First day in force.
    pub valid_from: NaiveDate,
    /// Last day in force.
    pub valid_to: Option<NaiveDate>,
}

/// Lists agreements.
#[utoipa::path(tag = "admin", security(("bearer" = [])), responses((status = 200, body = AgreementList), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/admin/agreements")]
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
pub async fn add_agreement(
    authorized: Authorized<ManageAgreements>,
    database: web::Data<Database>,
    body: web::Json<NewAgreement>,
) -> Result<HttpResponse, ApiError> {
    let scopes = body
        .scopes
        .iter()
        .map(|scope| {
            scope
                .parse::<Scope>()
                .map(|scope| scope.as_str().to_owned())
        })
        .collect::<Result<BTreeSet<_>, _>>()
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    authorized.note("from", &body.from);
    authorized.note("to", &body.to);
    authorized.note(
        "scopes",
        scopes.iter().cloned().collect::<Vec<_>>().join(","),
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
pub async fn revoke_agreement(
    authorized: Authorized<ManageAgreements>,
    database: web::Data<Database>,
    id: web::Path<Uuid>,
) -> Result<HttpResponse, ApiError> {
    let mut conn = database.connection().await?;
    let agreement = agreements::revoke(&mut conn, *id, &authorized.change_entry()).await?;
    authorized.committed();
    Ok(HttpResponse::Ok().json(AgreementView::from(agreement)))
}
