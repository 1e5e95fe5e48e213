//! The OpenAPI 3 document, generated from the handlers and types.

use actix_web::{HttpResponse, get};
use utoipa::OpenApi;

use crate::error::ErrorBody;
use crate::routes::{
    admin, assessment, audit, batches, comparison, emerging, exports, extracts, grid, health,
    hotspots, partnerships, profiles, regional, regional_requests, releases, requests, session,
};

/// Declares the documented endpoints once: the OpenAPI document ([`ApiDoc`]) lists exactly the
/// handlers [`services`] registers, so that neither can miss one.
macro_rules! documented_api {
    (paths($($($segment:ident)::+),* $(,)?), $($document:tt)*) => {
        /// The service's OpenAPI description.
        #[derive(OpenApi)]
        #[openapi(paths($($($segment)::+),*), $($document)*)]
        pub struct ApiDoc;

        /// Registers every documented endpoint.
        pub fn services(config: &mut actix_web::web::ServiceConfig) {
            $(config.service($($segment)::+);)*
        }
    };
}

documented_api!(
    paths(
        health::healthz,
        health::readyz,
        session::session,
        partnerships::list,
        partnerships::get,
        partnerships::sharing,
        partnerships::places,
        batches::list,
        extracts::upload,
        batches::get,
        batches::rejections,
        batches::withdraw,
        admin::list_agencies,
        admin::add_agency,
        admin::list_agreements,
        admin::add_agreement,
        admin::revoke_agreement,
        admin::list_users,
        admin::register_user,
        admin::disable_user,
        grid::grid,
        hotspots::hotspots,
        emerging::emerging,
        regional::regional_hotspots,
        comparison::comparison,
        crate::web::demo_users,
        exports::national_export,
        releases::prepare,
        releases::approve,
        releases::withdraw,
        releases::list,
        releases::show,
        requests::create,
        requests::list,
        requests::accept,
        requests::decline,
        requests::question,
        requests::reply,
        requests::waiting,
        regional_requests::groups,
        regional_requests::create,
        regional_requests::list,
        regional_requests::show,
        profiles::generate,
        profiles::list,
        profiles::show,
        profiles::show_board,
        assessment::page,
        assessment::record,
        assessment::show,
        audit::list,
        audit::verify,
        audit::readers,
        openapi_json,
    ),
    info(
        title = "Safeguard Atlas",
        description = "Multi-agency, pseudonymised child sexual exploitation case data turned into \
                       H3 hotspot maps and disclosure-controlled regional summaries for local \
                       safeguarding children partnerships."
    ),
    components(schemas(
        ErrorBody,
        crate::error::RejectedRow,
        health::Status,
        session::SessionView,
        partnerships::PartnershipView,
        partnerships::PartnershipList,
        partnerships::SharingList,
        partnerships::SharingPartnership,
        partnerships::PlaceList,
        atlas_domain::Place,
        batches::BatchView,
        batches::BatchList,
        admin::AgencyView,
        admin::AgencyList,
        admin::NewAgency,
        admin::AgreementView,
        admin::AgreementList,
        admin::NewAgreement,
        admin::UserView,
        admin::UserList,
        admin::NewRegistration,
        grid::GridView,
        grid::GridCellView,
        hotspots::HotspotsView,
        hotspots::HotspotCellView,
        hotspots::HotspotAreaView,
        hotspots::AreaTrendView,
        emerging::EmergingView,
        emerging::EmergingCellView,
        regional::RegionalHotspotsView,
        regional::RegionalCellView,
        regional::NeighbourSummaryView,
        atlas_app::comparison::ComparisonView,
        releases::ReleaseView,
        atlas_app::releases::ReleaseContent,
        releases::ReleaseList,
        releases::NewRelease,
        requests::AnsweringRelease,
        requests::RequestView,
        requests::RequestLists,
        requests::Message,
        requests::WaitingItem,
        requests::WaitingList,
        atlas_app::requests::NewSummaryRequest,
        regional_requests::RegionalGroupView,
        regional_requests::RegionalGroupList,
        regional_requests::RegionalRequestList,
        atlas_app::regional_requests::NewRegionalRequest,
        atlas_app::regional_requests::RegionalSummary,
        atlas_app::regional_requests::MemberAnswer,
        atlas_app::regional_requests::PublishedRelease,
        atlas_app::regional_requests::RegionalPeriod,
        atlas_app::regional_requests::RegionalTable,
        atlas_app::regional_requests::RegionalRow,
        atlas_app::regional_requests::RegionalTotal,
        atlas_app::regional_requests::PublishedFigure,
        profiles::ProfileVersionView,
        profiles::ProfileList,
        profiles::ProfileView,
        profiles::NewProfile,
        atlas_app::profiles::ProfileContent,
        atlas_app::profiles::Edition,
        atlas_app::profiles::Scale,
        atlas_app::profiles::Change,
        atlas_app::profiles::Section,
        atlas_app::profiles::Table,
        atlas_app::profiles::Row,
        atlas_app::profiles::Entry,
        assessment::AssessmentView,
        assessment::AssessmentEntry,
        assessment::SelfAssessmentPage,
        atlas_app::assessment::Theme,
        atlas_app::assessment::Question,
        atlas_app::assessment::Rating,
        atlas_app::assessment::ActionStatus,
        atlas_app::assessment::Action,
        atlas_app::assessment::Answer,
        atlas_app::assessment::NewAssessment,
        atlas_app::assessment::Evidence,
        atlas_app::assessment::RatingChange,
        atlas_app::assessment::OverdueAction,
        crate::web::DemoUserList,
        atlas_app::demo::DemoUser,
        exports::NationalExport,
        atlas_app::export::ExportRow,
        audit::AuditPage,
        audit::AuditEntryView,
        audit::ReadersPage,
        audit::ReaderView,
        audit::ChainState
    )),
    modifiers(&BearerAuth),
    tags(
        (
            name = "operations",
            description = "Health, readiness, metrics and this document"
        ),
        (
            name = "partnerships",
            description = "Safeguarding partnerships and their geography"
        ),
        (
            name = "extracts",
            description = "Agencies' uploads and the batches they become"
        ),
        (
            name = "analysis",
            description = "A partnership's grid and hotspots (exact counts, its own analysts)"
        ),
        (
            name = "releases",
            description = "Disclosure-controlled tables a partnership publishes to its partners"
        ),
        (
            name = "profiles",
            description =
                "A partnership's quarterly problem profiles: its own edition and the board edition"
        ),
        (
            name = "admin",
            description = "Agencies, sharing agreements and registered users (admins)"
        ),
        (
            name = "audit",
            description =
                "The hash-chained audit trail (auditors), and who read a partnership's records"
        )
    )
);

/// Declares the bearer-token scheme the endpoints' `security` refers to.
struct BearerAuth;

impl utoipa::Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .build(),
            ),
        );
    }
}

/// This document.
#[utoipa::path(tag = "operations", responses((status = 200, description = "OpenAPI 3 document")))]
#[get("/api/v1/openapi.json")]
#[tracing::instrument(skip_all)]
pub async fn openapi_json() -> HttpResponse {
    HttpResponse::Ok().json(ApiDoc::openapi())
}
