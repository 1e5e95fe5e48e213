//! A partnership board's self-assessment against the key questions of the guidance: the
//! questions with Atlas's evidence, the assessments recorded (dated and kept), the change since
//! the last one and the actions overdue (docs/profiles.md, "Self-assessment").

use actix_web::{HttpResponse, get, post, web};
use atlas_app::Analyses;
use atlas_app::assessment::{
    Answer, Evidence, NewAssessment, OverdueAction, RatingChange, SOURCE, THEMES, Theme, changes,
    overdue,
};
use atlas_app::settings::ProblemProfileSettings;
use atlas_store::Database;
use atlas_store::self_assessments::{self, SelfAssessment};
use chrono::{DateTime, NaiveDate, Utc};
use serde::Serialize;
use utoipa::ToSchema;

use crate::ApiError;
use crate::auth::{Authorized, Deferred};
use crate::guards::{ReadAssessment, RecordAssessment};

/// A recorded self-assessment.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentView {
    /// 1, 2, … within the partnership.
    pub version: i32,
    /// The day the board assessed itself.
    pub assessed_on: NaiveDate,
    /// Who recorded it.
    pub recorded_by: String,
    /// When.
    pub recorded_at: DateTime<Utc>,
    /// Every question's rating, evidence and actions.
    pub answers: Vec<Answer>,
    /// What Atlas held as evidence when it was recorded.
    pub atlas_evidence: Vec<Evidence>,
}

impl AssessmentView {
    fn of(stored: SelfAssessment) -> Result<Self, ApiError> {
        let read = |what: &str, err: serde_json::Error| {
            ApiError::Internal(format!("a stored self-assessment's {what}: {err}"))
        };
        Ok(Self {
            version: stored.version,
            assessed_on: stored.assessed_on,
            recorded_by: stored.recorded_by,
            recorded_at: stored.recorded_at,
            answers: serde_json::from_value(stored.answers).map_err(|err| read("answers", err))?,
            atlas_evidence: serde_json::from_value(stored.atlas_evidence)
                .map_err(|err| read("evidence", err))?,
        })
    }
}

/// A recorded self-assessment in the history.
#[derive(Debug, Serialize, ToSchema)]
pub struct AssessmentEntry {
    /// Its version.
    pub version: i32,
    /// The day the board assessed itself.
    pub assessed_on: NaiveDate,
    /// Who recorded it.
    pub recorded_by: String,
}

/// The self-assessment as a board works on it.
#[derive(Debug, Serialize, ToSchema)]
pub struct SelfAssessmentPage {
    /// Where the questions come from.
    pub source: &'static str,
    /// The five themes and their key questions.
    #[schema(value_type = Vec<Theme>)]
    pub themes: &'static [Theme],
    /// What Atlas holds today as evidence for the questions of "understanding what is
    /// happening".
    pub atlas_evidence: Vec<Evidence>,
    /// The latest assessment recorded.
    pub latest: Option<AssessmentView>,
    /// The questions whose rating changed from the assessment before the latest.
    pub changes_since_previous: Vec<RatingChange>,
    /// The latest assessment's actions past their due date and not done.
    pub overdue_actions: Vec<OverdueAction>,
    /// Every assessment recorded, newest first.
    pub history: Vec<AssessmentEntry>,
}

/// The self-assessment: the questions, Atlas's evidence today, the latest assessment, what
/// changed since the one before, overdue actions and the history.
#[utoipa::path(tag = "profiles", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code")), responses((status = 200, body = SelfAssessmentPage), (status = 403, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/self-assessment")]
#[tracing::instrument(skip_all)]
pub async fn page(
    authorized: Authorized<ReadAssessment>,
    database: web::Data<Database>,
    analyses: web::Data<Analyses>,
    schedule: web::Data<ProblemProfileSettings>,
) -> Result<HttpResponse, ApiError> {
    let code = authorized.target().clone();
    let today = Utc::now().date_naive();
    authorized.used_records_of([&code]);
    let atlas_evidence = analyses
        .atlas_evidence(&code, today, schedule.days_after_quarter)
        .await?;
    let recorded = {
        let mut conn = database.connection().await?;
        self_assessments::list(&mut conn, code.as_str()).await?
    };
    let history = recorded
        .iter()
        .map(|stored| AssessmentEntry {
            version: stored.version,
            assessed_on: stored.assessed_on,
            recorded_by: stored.recorded_by.clone(),
        })
        .collect();
    let (changes_since_previous, overdue_actions) = match recorded.as_slice() {
        [latest, previous, ..] => (changes(previous, latest), overdue(latest, today)),
        [latest] => (Vec::new(), overdue(latest, today)),
        [] => (Vec::new(), Vec::new()),
    };
    let latest = recorded
        .into_iter()
        .next()
        .map(AssessmentView::of)
        .transpose()?;
    authorized.returned(usize::from(latest.is_some()));
    Ok(HttpResponse::Ok().json(SelfAssessmentPage {
        source: SOURCE,
        themes: &THEMES,
        atlas_evidence,
        latest,
        changes_since_previous,
        overdue_actions,
        history,
    }))
}

/// Records the board's self-assessment as the next version, with the evidence Atlas holds
/// today.
#[utoipa::path(tag = "profiles", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code")), request_body = NewAssessment, responses((status = 201, body = AssessmentView), (status = 400, body = crate::error::ErrorBody), (status = 403, body = crate::error::ErrorBody)))]
#[post("/api/v1/partnerships/{code}/self-assessments")]
#[tracing::instrument(skip_all)]
pub async fn record(
    authorized: Authorized<RecordAssessment>,
    analyses: web::Data<Analyses>,
    schedule: web::Data<ProblemProfileSettings>,
    body: Deferred<web::Json<NewAssessment>>,
) -> Result<HttpResponse, ApiError> {
    let body = body.into_inner()?.into_inner();
    let code = authorized.target().clone();
    authorized.note("assessed_on", body.assessed_on);
    authorized.used_records_of([&code]);
    let stored = analyses
        .record_assessment(
            &code,
            &body,
            Utc::now().date_naive(),
            schedule.days_after_quarter,
            &authorized.principal().subject,
            &authorized.change_entry(),
        )
        .await?;
    authorized.committed();
    Ok(HttpResponse::Created().json(AssessmentView::of(stored)?))
}

/// One recorded self-assessment.
#[utoipa::path(tag = "profiles", security(("bearer" = [])), params(("code" = String, Path, description = "GSS code"), ("version" = i32, Path, description = "Its version", example = 1)), responses((status = 200, body = AssessmentView), (status = 403, body = crate::error::ErrorBody), (status = 404, body = crate::error::ErrorBody)))]
#[get("/api/v1/partnerships/{code}/self-assessments/{version}")]
#[tracing::instrument(skip_all)]
pub async fn show(
    authorized: Authorized<ReadAssessment>,
    database: web::Data<Database>,
    path: Deferred<web::Path<(String, i32)>>,
) -> Result<HttpResponse, ApiError> {
    let (_, version) = path.into_inner()?.into_inner();
    let mut conn = database.connection().await?;
    let stored = self_assessments::find(&mut conn, authorized.target().as_str(), version)
        .await?
        .ok_or_else(|| ApiError::NotFound(format!("no self-assessment has version {version}")))?;
    authorized.returned(1);
    Ok(HttpResponse::Ok().json(AssessmentView::of(stored)?))
}
