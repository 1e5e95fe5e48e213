//! The guards of [`crate::auth::Authorized`]: one per action an endpoint performs.

use std::collections::BTreeSet;

use actix_web::HttpRequest;
use atlas_access::{Action, Principal, Resource};
use atlas_domain::GssCode;
use atlas_store::{Database, agreements, batches, partnerships};
use uuid::Uuid;

use crate::ApiError;
use crate::auth::Guard;

/// Declares guards whose resource is the instance as a whole.
macro_rules! instance_guards {
    ($($(#[$meta:meta])* $name:ident => $action:ident;)+) => {
        $(
            $(#[$meta])*
            pub struct $name;

            impl Guard for $name {
                const ACTION: Action = Action::$action;
                type Target = ();

                async fn load(
                    _: &HttpRequest,
                    _: &Principal,
                    _: &Database,
                ) -> Result<(Resource, ()), ApiError> {
                    Ok((Resource::Instance, ()))
                }
            }
        )+
    };
}

instance_guards! {
    /// Reading who one is.
    ReadSession => ReadSession;
    /// Reading partnerships, boundaries and neighbours.
    ReadReference => ReadReference;
    /// Listing and registering agencies.
    ManageAgencies => ManageAgencies;
    /// Listing, creating and revoking sharing agreements.
    ManageAgreements => ManageAgreements;
    /// Listing, registering and disabling users.
    ManageUsers => ManageUsers;
    /// Reading the audit trail.
    ReadAudit => ReadAudit;
    /// Producing the national export.
    ExportNational => ExportNational;
}

/// The caller's agency. Without an agency claim the nil id, which matches no agency, so the
/// policy denies.
fn caller_agency(principal: &Principal) -> Uuid {
    principal.agency.unwrap_or(Uuid::nil())
}

/// Uploading an extract for the caller's agency.
pub struct UploadExtract;

impl Guard for UploadExtract {
    const ACTION: Action = Action::UploadExtract;
    type Target = ();

    async fn load(
        _: &HttpRequest,
        principal: &Principal,
        _: &Database,
    ) -> Result<(Resource, ()), ApiError> {
        Ok((
            Resource::Agency {
                id: caller_agency(principal),
            },
            (),
        ))
    }
}

/// Reading which partnerships share with the caller's own partnership.
pub struct ReadSharing;

impl Guard for ReadSharing {
    const ACTION: Action = Action::ReadSharing;
    type Target = GssCode;

    async fn load(
        _: &HttpRequest,
        principal: &Principal,
        _: &Database,
    ) -> Result<(Resource, GssCode), ApiError> {
        Ok((
            Resource::Partnership {
                code: principal.partnership.clone(),
                shared_scopes: BTreeSet::new(),
            },
            principal.partnership.clone(),
        ))
    }
}

/// Listing the batches of the caller's agency: reading batches of that agency, through none of
/// the partnerships (so only the agency's own analysts pass).
pub struct ReadAgencyBatches;

impl Guard for ReadAgencyBatches {
    const ACTION: Action = Action::ReadBatch;
    type Target = Uuid;

    async fn load(
        _: &HttpRequest,
        principal: &Principal,
        _: &Database,
    ) -> Result<(Resource, Uuid), ApiError> {
        let agency = caller_agency(principal);
        Ok((
            Resource::Batch {
                agency,
                partnerships: BTreeSet::new(),
            },
            agency,
        ))
    }
}

/// Declares guards acting on the batch named by the `{id}` path segment.
macro_rules! batch_guards {
    ($($(#[$meta:meta])* $name:ident => $action:ident;)+) => {
        $(
            $(#[$meta])*
            pub struct $name;

            impl Guard for $name {
                const ACTION: Action = Action::$action;
                type Target = batches::Batch;

                async fn load(
                    request: &HttpRequest,
                    _: &Principal,
                    database: &Database,
                ) -> Result<(Resource, batches::Batch), ApiError> {
                    load_batch(request, database).await
                }
            }
        )+
    };
}

batch_guards! {
    /// Reading a batch's summary.
    ReadBatch => ReadBatch;
    /// Downloading a batch's rejection report.
    ReadRejections => ReadRejections;
    /// Withdrawing a batch.
    WithdrawBatch => WithdrawBatch;
}

async fn load_batch(
    request: &HttpRequest,
    database: &Database,
) -> Result<(Resource, batches::Batch), ApiError> {
    let id: Uuid = request
        .match_info()
        .get("id")
        .and_then(|id| id.parse().ok())
        .ok_or_else(|| ApiError::BadRequest("the batch id is not a UUID".to_owned()))?;
    let mut conn = database.connection().await?;
    let batch = batches::find(&mut conn, id)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no batch has the id {id}")))?;
    let resource = Resource::Batch {
        agency: batch.record.agency_id,
        partnerships: batch.partnerships.keys().cloned().collect(),
    };
    Ok((resource, batch))
}

/// Declares guards acting on the partnership named by the `{code}` path segment.
macro_rules! partnership_guards {
    ($($(#[$meta:meta])* $name:ident => $action:ident;)+) => {
        $(
            $(#[$meta])*
            pub struct $name;

            impl Guard for $name {
                const ACTION: Action = Action::$action;
                type Target = GssCode;

                async fn load(
                    request: &HttpRequest,
                    principal: &Principal,
                    database: &Database,
                ) -> Result<(Resource, GssCode), ApiError> {
                    load_partnership(request, principal, database).await
                }
            }
        )+
    };
}

partnership_guards! {
    /// Reading a partnership's grid of exact counts.
    ReadGrid => ReadGrid;
    /// Reading a partnership's hotspot analyses.
    ReadAnalysis => ReadAnalysis;
    /// Preparing a release of a partnership's disclosure-controlled tables.
    PrepareRelease => PrepareRelease;
    /// Approving (as the second analyst) or withdrawing a partnership's release.
    ApproveRelease => ApproveRelease;
    /// Reading a partnership's releases (its analysts, and partners' viewers it shares with).
    ReadRelease => ReadRelease;
    /// Listing who, from outside a partnership, read its records.
    ReadAccessLog => ReadAccessLog;
    /// Generating a new version of a partnership's problem profile.
    GenerateProfile => GenerateProfile;
    /// Reading a partnership's problem profiles in its own edition.
    ReadProfile => ReadProfile;
    /// Reading and listing a partnership's problem profiles in the board edition.
    ReadBoardProfile => ReadBoardProfile;
    /// Recording a partnership board's self-assessment.
    RecordAssessment => RecordAssessment;
    /// Reading a partnership board's self-assessments.
    ReadAssessment => ReadAssessment;
    /// Asking a partnership that shares its releases for a summary, or replying to its question.
    RequestSummary => RequestSummary;
    /// Accepting, declining or questioning the requests made to one's own partnership.
    AnswerSummaryRequest => AnswerSummaryRequest;
    /// Listing the requests one's own partnership made and received.
    ReadSummaryRequests => ReadSummaryRequests;
    /// Asking every member of a regional group for a summary.
    RequestRegionalSummary => RequestRegionalSummary;
}

/// The partnership of the path, with the scopes its agreements in force today share with the
/// caller's partnership.
async fn load_partnership(
    request: &HttpRequest,
    principal: &Principal,
    database: &Database,
) -> Result<(Resource, GssCode), ApiError> {
    let code = GssCode::parse(request.match_info().get("code").unwrap_or_default())
        .map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let mut conn = database.connection().await?;
    if partnerships::find(&mut conn, &code).await?.is_none() {
        return Err(ApiError::NotFound(format!(
            "no partnership has the code {code}"
        )));
    }
    let shared_scopes = if code == principal.partnership {
        BTreeSet::new()
    } else {
        let today = chrono::Utc::now().date_naive();
        agreements::shared_scopes(&mut conn, &code, &principal.partnership, today).await?
    };
    Ok((
        Resource::Partnership {
            code: code.clone(),
            shared_scopes,
        },
        code,
    ))
}
