//! The access policy: one pure function, [`decide`], of principal × action × resource.
//!
//! docs/access.md prints the resulting matrix; a test keeps the two equal, and the server's
//! role-matrix test walks every cell over HTTP.

use std::collections::BTreeSet;
use std::fmt;

use atlas_domain::GssCode;
use uuid::Uuid;

use crate::{Principal, Role, Scope};

/// Something a caller asks to do. Each endpoint performs exactly one action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Action {
    /// Read who one is, as the service reads one's token: subject, partnership, agency, roles.
    ReadSession,
    /// Read national reference data: partnerships, boundaries, neighbours.
    ReadReference,
    /// Upload an extract for an agency.
    UploadExtract,
    /// Read a batch's summary and data-quality figures.
    ReadBatch,
    /// Download a batch's rejection report.
    ReadRejections,
    /// Withdraw a batch (or supersede it with a new upload).
    WithdrawBatch,
    /// Read a partnership's cell-level grid of exact counts.
    ReadGrid,
    /// Read a partnership's analyses: hotspots, emerging hotspots, comparisons.
    ReadAnalysis,
    /// Prepare a release of disclosure-controlled tables for other partnerships.
    PrepareRelease,
    /// Approve a release prepared by someone else.
    ApproveRelease,
    /// Read a partnership's approved releases.
    ReadRelease,
    /// Read which partnerships share their outputs with one's own, and what they share.
    ReadSharing,
    /// List, create and change agencies.
    ManageAgencies,
    /// List, create and revoke sharing agreements.
    ManageAgreements,
    /// List, register and disable users.
    ManageUsers,
    /// Read the audit trail and its verification state.
    ReadAudit,
    /// Produce the national export: every partnership's disclosure-controlled figures.
    ExportNational,
    /// Revise a partnership's frozen summary of a closed period (a correction).
    ReviseSummary,
    /// List who, from outside a partnership, read answers built from its records.
    ReadAccessLog,
    /// Generate a new version of a partnership's quarterly problem profile.
    GenerateProfile,
    /// Read a partnership's problem profiles in its own edition (exact counts).
    ReadProfile,
    /// Read a partnership's problem profiles in the board edition, and list them.
    ReadBoardProfile,
    /// Record a partnership board's self-assessment.
    RecordAssessment,
    /// Read a partnership board's self-assessments, with Atlas's evidence.
    ReadAssessment,
    /// Ask a partnership that shares its releases with one's own for a summary, or reply to
    /// its question about such a request.
    RequestSummary,
    /// Accept, decline or question the requests for summaries made to one's own partnership.
    AnswerSummaryRequest,
    /// List the requests for summaries one's own partnership made and received.
    ReadSummaryRequests,
    /// Ask every member of a regional group for a summary on one's own partnership's behalf
    /// (each member must share its releases with it: the caller checks each as
    /// [`Action::RequestSummary`]).
    RequestRegionalSummary,
}

impl Action {
    /// Every action, in a stable order.
    pub const ALL: [Self; 28] = [
        Self::ReadSession,
        Self::ReadReference,
        Self::UploadExtract,
        Self::ReadBatch,
        Self::ReadRejections,
        Self::WithdrawBatch,
        Self::ReadGrid,
        Self::ReadAnalysis,
        Self::PrepareRelease,
        Self::ApproveRelease,
        Self::ReadRelease,
        Self::ReadSharing,
        Self::ManageAgencies,
        Self::ManageAgreements,
        Self::ManageUsers,
        Self::ReadAudit,
        Self::ExportNational,
        Self::ReviseSummary,
        Self::ReadAccessLog,
        Self::GenerateProfile,
        Self::ReadProfile,
        Self::ReadBoardProfile,
        Self::RecordAssessment,
        Self::ReadAssessment,
        Self::RequestSummary,
        Self::AnswerSummaryRequest,
        Self::ReadSummaryRequests,
        Self::RequestRegionalSummary,
    ];

    /// The name recorded in the audit trail.
    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::ReadSession => "session.read",
            Self::ReadReference => "reference.read",
            Self::UploadExtract => "extract.upload",
            Self::ReadBatch => "batch.read",
            Self::ReadRejections => "batch.rejections",
            Self::WithdrawBatch => "batch.withdraw",
            Self::ReadGrid => "grid.read",
            Self::ReadAnalysis => "analysis.read",
            Self::PrepareRelease => "release.prepare",
            Self::ApproveRelease => "release.approve",
            Self::ReadRelease => "release.read",
            Self::ReadSharing => "sharing.read",
            Self::ManageAgencies => "agency.manage",
            Self::ManageAgreements => "agreement.manage",
            Self::ManageUsers => "user.manage",
            Self::ReadAudit => "audit.read",
            Self::ExportNational => "export.national",
            Self::ReviseSummary => "summary.revise",
            Self::ReadAccessLog => "access_log.read",
            Self::GenerateProfile => "profile.generate",
            Self::ReadProfile => "profile.read",
            Self::ReadBoardProfile => "profile.read_board",
            Self::RecordAssessment => "assessment.record",
            Self::ReadAssessment => "assessment.read",
            Self::RequestSummary => "summary_request.create",
            Self::AnswerSummaryRequest => "summary_request.answer",
            Self::ReadSummaryRequests => "summary_request.read",
            Self::RequestRegionalSummary => "regional_request.create",
        }
    }

    /// The roles that may perform the action on a resource they are related to.
    #[must_use]
    pub const fn roles(self) -> &'static [Role] {
        match self {
            Self::ReadSession | Self::ReadReference => &Role::ALL,
            Self::UploadExtract | Self::ReadRejections | Self::WithdrawBatch => {
                &[Role::AgencyAnalyst]
            }
            Self::ReadBatch | Self::ReadGrid => &[Role::AgencyAnalyst, Role::PartnershipAnalyst],
            Self::ReadAnalysis
            | Self::PrepareRelease
            | Self::ApproveRelease
            | Self::GenerateProfile
            | Self::ReadProfile
            | Self::RecordAssessment
            | Self::AnswerSummaryRequest => &[Role::PartnershipAnalyst],
            Self::RequestSummary | Self::ReadSummaryRequests | Self::RequestRegionalSummary => {
                &[Role::PartnershipAnalyst, Role::PartnerViewer]
            }
            Self::ReadBoardProfile | Self::ReadAssessment => {
                &[Role::PartnershipAnalyst, Role::BoardMember]
            }
            Self::ReadRelease | Self::ReadSharing => {
                &[Role::PartnershipAnalyst, Role::PartnerViewer]
            }
            Self::ManageAgencies
            | Self::ManageAgreements
            | Self::ManageUsers
            | Self::ExportNational
            | Self::ReviseSummary => &[Role::Admin],
            Self::ReadAudit => &[Role::Auditor],
            Self::ReadAccessLog => &[Role::PartnershipAnalyst, Role::Auditor],
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.as_str())
    }
}

/// What an action is performed on, with the facts the policy needs about it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resource {
    /// The instance as a whole: reference data, agencies, agreements, the audit trail.
    Instance,
    /// One partnership's data, with the scopes that its sharing agreements in force today grant
    /// to the caller's partnership (empty when none, or when it is the caller's own).
    Partnership {
        /// The partnership whose data is asked for.
        code: GssCode,
        /// Scopes shared with the caller's partnership by agreements in force.
        shared_scopes: BTreeSet<Scope>,
    },
    /// An agency's extracts: the agency an upload is for.
    Agency {
        /// The agency.
        id: Uuid,
    },
    /// One stored batch.
    Batch {
        /// The agency that uploaded it.
        agency: Uuid,
        /// The partnerships it contributed rows to.
        partnerships: BTreeSet<GssCode>,
    },
}

/// Which case records an allowed request may read, of the partnerships the policy let it reach.
/// Handlers read records only through it (the server's `Authorized::record_scope`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecordScope {
    /// Every record: the partnership's analysts, and every caller of an action that reads no
    /// records.
    Partnership,
    /// Only the records this agency contributed: agency staff, who need to know their own
    /// agency's cases and no other's. A token naming no agency has the nil id, which matches
    /// no record.
    Agency(Uuid),
}

impl RecordScope {
    /// Whether a record contributed by `agency` is in scope.
    #[must_use]
    pub fn admits(self, agency: Uuid) -> bool {
        match self {
            Self::Partnership => true,
            Self::Agency(own) => own == agency,
        }
    }

    /// The scope `role` gives `principal`.
    fn of_role(principal: &Principal, role: Role) -> Self {
        match role {
            Role::AgencyAnalyst => Self::Agency(principal.agency.unwrap_or(Uuid::nil())),
            _ => Self::Partnership,
        }
    }

    /// The wider of two scopes granted on `resource` by two of the caller's roles. A batch is
    /// wholly its agency's, so its staff's scope is the wider there (a partnership analyst sees
    /// only the partnership's share of it); of a partnership's records, its analysts' is.
    fn wider(self, other: Self, resource: &Resource) -> Self {
        let (agency, partnership) = match (self, other) {
            (Self::Agency(_), Self::Partnership) => (self, other),
            (Self::Partnership, Self::Agency(_)) => (other, self),
            _ => return self,
        };
        if matches!(resource, Resource::Batch { .. }) {
            agency
        } else {
            partnership
        }
    }
}

/// The policy's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// The caller may go ahead.
    Allow,
    /// The caller may not, for this reason.
    Deny(Denial),
}

/// Why a request was refused. The text is safe to show the caller: it never names another
/// partnership's data.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Denial {
    /// None of the caller's roles may perform the action at all.
    #[error("none of your roles may {action}; it needs one of: {needed}")]
    Role {
        /// The action refused.
        action: Action,
        /// The roles that may perform it, comma-separated.
        needed: String,
    },
    /// The data belongs to a partnership the caller is not a member of.
    #[error("this data belongs to another partnership")]
    OtherPartnership,
    /// The partnership does not share this with the caller's partnership.
    #[error("no sharing agreement in force lets your partnership read this")]
    NotShared,
    /// The caller's token names no agency, and the action is agency staff's.
    #[error("your token names no agency")]
    NoAgency,
    /// The batch or agency is another agency's.
    #[error("this belongs to another agency")]
    OtherAgency,
    /// The token names an agency this service does not know.
    #[error("your token's agency is not registered with this service")]
    UnknownAgency,
    /// The token's agency does not serve the token's partnership.
    #[error("your token's agency does not serve your token's partnership")]
    AgencyNotServing,
    /// Registration is required and the caller is not registered.
    #[error("you are not registered with this service; ask its administrators")]
    NotRegistered,
    /// The caller's registration is disabled.
    #[error("your registration with this service is disabled")]
    Disabled,
    /// The token's partnership or agency is not the registered one.
    #[error("your token's {0} is not the one you are registered with")]
    RegistrationMismatch(&'static str),
    /// None of the token's roles is registered for the caller.
    #[error("none of your token's roles is registered for you")]
    NoRegisteredRole,
    /// The action is not performed on this kind of resource (a fault of the caller's route).
    #[error("{action} does not apply to this resource")]
    NotApplicable {
        /// The action refused.
        action: Action,
    },
}

/// What administrators registered for a subject (see [`constrain`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Registration {
    /// The partnership the person belongs to.
    pub partnership: GssCode,
    /// The agency the person works for.
    pub agency: Option<Uuid>,
    /// The roles the person may use.
    pub roles: BTreeSet<Role>,
    /// Whether the registration is disabled.
    pub disabled: bool,
}

/// Applies the subject's registration to a verified token: the token must name the registered
/// partnership and agency, and keeps only its registered roles. Without a registration the
/// token stands as it is, unless `required`.
///
/// # Errors
/// The [`Denial`] when the caller may do nothing at all.
pub fn constrain(
    principal: Principal,
    registration: Option<&Registration>,
    required: bool,
) -> Result<Principal, Denial> {
    let Some(registration) = registration else {
        return if required {
            Err(Denial::NotRegistered)
        } else {
            Ok(principal)
        };
    };
    if registration.disabled {
        return Err(Denial::Disabled);
    }
    if principal.partnership != registration.partnership {
        return Err(Denial::RegistrationMismatch("partnership"));
    }
    if principal.agency != registration.agency {
        return Err(Denial::RegistrationMismatch("agency"));
    }
    let roles: BTreeSet<Role> = principal
        .roles
        .intersection(&registration.roles)
        .copied()
        .collect();
    if roles.is_empty() {
        return Err(Denial::NoRegisteredRole);
    }
    Ok(Principal { roles, ..principal })
}

/// Holds a token's agency to the partnerships it serves: a token naming an agency must name a
/// partnership that agency serves. `served` is the set of partnerships the token's agency
/// serves, `None` when no such agency exists; a token naming no agency passes.
///
/// # Errors
/// [`Denial::UnknownAgency`] or [`Denial::AgencyNotServing`].
pub fn serving(principal: &Principal, served: Option<&BTreeSet<GssCode>>) -> Result<(), Denial> {
    if principal.agency.is_none() {
        return Ok(());
    }
    match served {
        None => Err(Denial::UnknownAgency),
        Some(served) if served.contains(&principal.partnership) => Ok(()),
        Some(_) => Err(Denial::AgencyNotServing),
    }
}

/// Decides whether `principal` may perform `action` on `resource`: [`authorize`] without the
/// record scope.
#[must_use]
pub fn decide(principal: &Principal, action: Action, resource: &Resource) -> Decision {
    match authorize(principal, action, resource) {
        Ok(_) => Decision::Allow,
        Err(denial) => Decision::Deny(denial),
    }
}

/// Decides whether `principal` may perform `action` on `resource` and, if so, which of its
/// case records the request may read.
///
/// A caller with several roles is allowed when any one of them allows, with the widest scope
/// of those that allow; when none does, the denial of the first role that could have
/// performed the action is returned (or a role denial when the caller holds none of them).
///
/// # Errors
/// The [`Denial`] when the caller may not.
pub fn authorize(
    principal: &Principal,
    action: Action,
    resource: &Resource,
) -> Result<RecordScope, Denial> {
    let mut first_denial = None;
    let mut scope: Option<RecordScope> = None;
    for &role in action.roles() {
        if !principal.has(role) {
            continue;
        }
        match decide_for_role(principal, role, action, resource) {
            Decision::Allow => {
                let granted = RecordScope::of_role(principal, role);
                scope = Some(scope.map_or(granted, |scope| scope.wider(granted, resource)));
            }
            Decision::Deny(denial) => {
                first_denial.get_or_insert(denial);
            }
        }
    }
    scope.ok_or_else(|| {
        first_denial.unwrap_or_else(|| Denial::Role {
            action,
            needed: action
                .roles()
                .iter()
                .map(|role| role.as_str())
                .collect::<Vec<_>>()
                .join(", "),
        })
    })
}

/// The decision for one role the caller holds, which [`Action::roles`] lists for `action`.
fn decide_for_role(
    principal: &Principal,
    role: Role,
    action: Action,
    resource: &Resource,
) -> Decision {
    let own_partnership = |code: &GssCode| {
        if *code == principal.partnership {
            Decision::Allow
        } else {
            Decision::Deny(Denial::OtherPartnership)
        }
    };
    let own_agency = |agency: &Uuid| match principal.agency {
        None => Decision::Deny(Denial::NoAgency),
        Some(own) if own == *agency => Decision::Allow,
        Some(_) => Decision::Deny(Denial::OtherAgency),
    };
    match (action, resource) {
        (
            Action::ReadSession
            | Action::ReadReference
            | Action::ManageAgencies
            | Action::ManageAgreements
            | Action::ManageUsers
            | Action::ReadAudit
            | Action::ExportNational
            | Action::ReviseSummary,
            Resource::Instance,
        ) => Decision::Allow,
        (Action::UploadExtract, Resource::Agency { id }) => own_agency(id),
        (
            Action::ReadBatch | Action::ReadRejections | Action::WithdrawBatch,
            Resource::Batch {
                agency,
                partnerships,
            },
        ) => match role {
            Role::AgencyAnalyst => own_agency(agency),
            _ if partnerships.contains(&principal.partnership) => Decision::Allow,
            _ => Decision::Deny(Denial::OtherPartnership),
        },
        // Agency staff read a grid of their own agency's records only, so they need an agency.
        (Action::ReadGrid, Resource::Partnership { code, .. }) if role == Role::AgencyAnalyst => {
            match principal.agency {
                None => Decision::Deny(Denial::NoAgency),
                Some(_) => own_partnership(code),
            }
        }
        (
            Action::ReadGrid
            | Action::ReadAnalysis
            | Action::PrepareRelease
            | Action::ApproveRelease
            | Action::ReadSharing
            | Action::GenerateProfile
            | Action::ReadProfile
            | Action::ReadBoardProfile
            | Action::RecordAssessment
            | Action::ReadAssessment
            | Action::AnswerSummaryRequest
            | Action::ReadSummaryRequests
            | Action::RequestRegionalSummary,
            Resource::Partnership { code, .. },
        ) => own_partnership(code),
        // A request goes to another partnership that shares its releases with one's own.
        (
            Action::RequestSummary,
            Resource::Partnership {
                code,
                shared_scopes,
            },
        ) => {
            if *code != principal.partnership && shared_scopes.contains(&Scope::Releases) {
                Decision::Allow
            } else {
                Decision::Deny(Denial::NotShared)
            }
        }
        (Action::ReadAccessLog, Resource::Partnership { code, .. }) => match role {
            Role::Auditor => Decision::Allow,
            _ => own_partnership(code),
        },
        (
            Action::ReadRelease,
            Resource::Partnership {
                code,
                shared_scopes,
            },
        ) => match role {
            Role::PartnerViewer if *code == principal.partnership => {
                Decision::Deny(Denial::NotShared)
            }
            Role::PartnerViewer if shared_scopes.contains(&Scope::Releases) => Decision::Allow,
            Role::PartnerViewer => Decision::Deny(Denial::NotShared),
            // A partnership's analysts read the releases partners share with it: the answers
            // to its requests for summaries.
            Role::PartnershipAnalyst
                if *code != principal.partnership && shared_scopes.contains(&Scope::Releases) =>
            {
                Decision::Allow
            }
            _ => own_partnership(code),
        },
        _ => Decision::Deny(Denial::NotApplicable { action }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn code(text: &str) -> GssCode {
        GssCode::parse(text).unwrap()
    }

    fn principal(roles: &[Role], agency: Option<Uuid>) -> Principal {
        Principal {
            subject: "someone".to_owned(),
            partnership: code("E10000017"),
            agency,
            roles: roles.iter().copied().collect(),
        }
    }

    fn partnership(text: &str, shared: &[Scope]) -> Resource {
        Resource::Partnership {
            code: code(text),
            shared_scopes: shared.iter().copied().collect(),
        }
    }

    #[test]
    fn partnership_analysts_read_only_their_own_grid() {
        let analyst = principal(&[Role::PartnershipAnalyst], None);
        assert_eq!(
            decide(&analyst, Action::ReadGrid, &partnership("E10000017", &[])),
            Decision::Allow
        );
        assert_eq!(
            decide(
                &analyst,
                Action::ReadGrid,
                &partnership("E06000009", &[Scope::Releases])
            ),
            Decision::Deny(Denial::OtherPartnership)
        );
    }

    #[test]
    fn partner_viewers_read_releases_only_under_an_agreement() {
        let viewer = principal(&[Role::PartnerViewer], None);
        assert_eq!(
            decide(
                &viewer,
                Action::ReadRelease,
                &partnership("E06000009", &[Scope::Releases])
            ),
            Decision::Allow
        );
        assert_eq!(
            decide(&viewer, Action::ReadRelease, &partnership("E06000009", &[])),
            Decision::Deny(Denial::NotShared)
        );
        assert!(matches!(
            decide(
                &viewer,
                Action::ReadGrid,
                &partnership("E06000009", &[Scope::Releases])
            ),
            Decision::Deny(Denial::Role { .. })
        ));
    }

    #[test]
    fn agency_staff_manage_only_their_own_agency_batches() {
        let own = Uuid::from_u128(1);
        let analyst = principal(&[Role::AgencyAnalyst], Some(own));
        let batch = |agency| Resource::Batch {
            agency,
            partnerships: [code("E10000017")].into(),
        };
        assert_eq!(
            decide(&analyst, Action::WithdrawBatch, &batch(own)),
            Decision::Allow
        );
        assert_eq!(
            decide(&analyst, Action::WithdrawBatch, &batch(Uuid::from_u128(2))),
            Decision::Deny(Denial::OtherAgency)
        );
        let no_agency = principal(&[Role::AgencyAnalyst], None);
        assert_eq!(
            decide(
                &no_agency,
                Action::UploadExtract,
                &Resource::Agency { id: own }
            ),
            Decision::Deny(Denial::NoAgency)
        );
    }

    #[test]
    fn agency_staff_read_only_their_own_agencys_records() {
        let own = Uuid::from_u128(1);
        let lancashire = partnership("E10000017", &[]);
        let agency_analyst = principal(&[Role::AgencyAnalyst], Some(own));
        assert_eq!(
            authorize(&agency_analyst, Action::ReadGrid, &lancashire),
            Ok(RecordScope::Agency(own))
        );
        assert!(RecordScope::Agency(own).admits(own));
        assert!(!RecordScope::Agency(own).admits(Uuid::from_u128(2)));
        assert_eq!(
            authorize(
                &principal(&[Role::AgencyAnalyst], None),
                Action::ReadGrid,
                &lancashire
            ),
            Err(Denial::NoAgency)
        );
        let analyst = principal(&[Role::PartnershipAnalyst], None);
        assert_eq!(
            authorize(&analyst, Action::ReadGrid, &lancashire),
            Ok(RecordScope::Partnership)
        );
        // Both roles: the whole partnership's grid, and the whole of the agency's own batch.
        let both = principal(&[Role::AgencyAnalyst, Role::PartnershipAnalyst], Some(own));
        assert_eq!(
            authorize(&both, Action::ReadGrid, &lancashire),
            Ok(RecordScope::Partnership)
        );
        let batch = Resource::Batch {
            agency: own,
            partnerships: [code("E10000017"), code("E06000009")].into(),
        };
        assert_eq!(
            authorize(&both, Action::ReadBatch, &batch),
            Ok(RecordScope::Agency(own))
        );
        assert_eq!(
            authorize(&analyst, Action::ReadBatch, &batch),
            Ok(RecordScope::Partnership)
        );
    }

    #[test]
    fn a_tokens_agency_must_serve_its_partnership() {
        let served: BTreeSet<GssCode> = [code("E06000009")].into();
        let agency_staff = principal(&[Role::AgencyAnalyst], Some(Uuid::from_u128(1)));
        assert_eq!(
            serving(&agency_staff, Some(&served)),
            Err(Denial::AgencyNotServing)
        );
        assert_eq!(serving(&agency_staff, None), Err(Denial::UnknownAgency));
        let lancashire: BTreeSet<GssCode> = [code("E06000009"), code("E10000017")].into();
        assert_eq!(serving(&agency_staff, Some(&lancashire)), Ok(()));
        let analyst = principal(&[Role::PartnershipAnalyst], None);
        assert_eq!(serving(&analyst, None), Ok(()));
        for denial in [Denial::AgencyNotServing, Denial::UnknownAgency] {
            assert!(!denial.to_string().contains("E06000009"));
        }
    }

    #[test]
    fn a_partnerships_readers_are_its_analysts_and_auditors_business() {
        let own = partnership("E10000017", &[]);
        let other = partnership("E06000009", &[Scope::Releases]);
        let analyst = principal(&[Role::PartnershipAnalyst], None);
        assert_eq!(
            decide(&analyst, Action::ReadAccessLog, &own),
            Decision::Allow
        );
        assert_eq!(
            decide(&analyst, Action::ReadAccessLog, &other),
            Decision::Deny(Denial::OtherPartnership)
        );
        let auditor = principal(&[Role::Auditor], None);
        assert_eq!(
            decide(&auditor, Action::ReadAccessLog, &other),
            Decision::Allow
        );
        for role in [Role::AgencyAnalyst, Role::PartnerViewer, Role::Admin] {
            let caller = principal(&[role], Some(Uuid::from_u128(1)));
            assert!(matches!(
                decide(&caller, Action::ReadAccessLog, &own),
                Decision::Deny(Denial::Role { .. })
            ));
        }
    }

    #[test]
    fn a_mismatched_resource_is_denied_not_allowed() {
        let admin = principal(&[Role::Admin], None);
        assert_eq!(
            decide(
                &admin,
                Action::ManageAgencies,
                &partnership("E10000017", &[])
            ),
            Decision::Deny(Denial::NotApplicable {
                action: Action::ManageAgencies
            })
        );
    }

    #[test]
    fn a_registration_narrows_a_token_and_never_widens_it() {
        let token = principal(&[Role::PartnershipAnalyst, Role::Admin], None);
        let registration = Registration {
            partnership: code("E10000017"),
            agency: None,
            roles: [Role::PartnershipAnalyst, Role::Auditor].into(),
            disabled: false,
        };
        let narrowed = constrain(token.clone(), Some(&registration), true).unwrap();
        assert_eq!(narrowed.roles, [Role::PartnershipAnalyst].into());
        assert_eq!(constrain(token.clone(), None, false), Ok(token.clone()));
        assert_eq!(
            constrain(token.clone(), None, true),
            Err(Denial::NotRegistered)
        );
        let elsewhere = Registration {
            partnership: code("E06000009"),
            ..registration.clone()
        };
        assert_eq!(
            constrain(token.clone(), Some(&elsewhere), false),
            Err(Denial::RegistrationMismatch("partnership"))
        );
        let with_agency = Registration {
            agency: Some(Uuid::from_u128(7)),
            ..registration.clone()
        };
        assert_eq!(
            constrain(token.clone(), Some(&with_agency), false),
            Err(Denial::RegistrationMismatch("agency"))
        );
        let disabled = Registration {
            disabled: true,
            ..registration.clone()
        };
        assert_eq!(
            constrain(token.clone(), Some(&disabled), false),
            Err(Denial::Disabled)
        );
        let other_roles = Registration {
            roles: [Role::Auditor].into(),
            ..registration
        };
        assert_eq!(
            constrain(token, Some(&other_roles), false),
            Err(Denial::NoRegisteredRole)
        );
    }

    fn any_resource() -> impl Strategy<Value = Resource> {
        let codes = prop::sample::select(vec!["E10000017", "E06000009", "E08000005"]);
        prop_oneof![
            Just(Resource::Instance),
            (codes.clone(), any::<bool>()).prop_map(|(text, shared)| Resource::Partnership {
                code: code(text),
                shared_scopes: if shared {
                    [Scope::Releases].into()
                } else {
                    BTreeSet::new()
                },
            }),
            (0_u128..3).prop_map(|id| Resource::Agency {
                id: Uuid::from_u128(id)
            }),
            (0_u128..3, codes).prop_map(|(id, text)| Resource::Batch {
                agency: Uuid::from_u128(id),
                partnerships: [code(text)].into(),
            }),
        ]
    }

    proptest! {
        /// Roles only ever add permissions: a caller with more roles is allowed at least
        /// whatever a caller with fewer is, and a caller with no relevant role is always denied.
        #[test]
        fn roles_are_monotone(
            roles in prop::collection::btree_set(prop::sample::select(Role::ALL.to_vec()), 0..5),
            extra in prop::sample::select(Role::ALL.to_vec()),
            agency in prop::option::of(0_u128..3),
            action in prop::sample::select(Action::ALL.to_vec()),
            resource in any_resource(),
        ) {
            let mut fewer = principal(&[], agency.map(Uuid::from_u128));
            fewer.roles = roles;
            let mut more = fewer.clone();
            more.roles.insert(extra);
            if decide(&fewer, action, &resource) == Decision::Allow {
                prop_assert_eq!(decide(&more, action, &resource), Decision::Allow);
            }
            if !action.roles().iter().any(|role| fewer.has(*role)) {
                prop_assert!(
                    matches!(decide(&fewer, action, &resource), Decision::Deny(Denial::Role { .. })),
                    "expected a role denial"
                );
            }
        }

        /// Nobody reads cell-level data of a partnership other than their own.
        #[test]
        fn cell_level_data_never_leaves_the_partnership(
            roles in prop::collection::btree_set(prop::sample::select(Role::ALL.to_vec()), 1..5),
            target in prop::sample::select(vec!["E06000009", "E08000005"]),
            shared in any::<bool>(),
        ) {
            let mut caller = principal(&[], Some(Uuid::from_u128(1)));
            caller.roles = roles;
            let resource = partnership(target, if shared { &[Scope::Releases] } else { &[] });
            for action in [Action::ReadGrid, Action::ReadAnalysis, Action::PrepareRelease, Action::ApproveRelease] {
                prop_assert!(decide(&caller, action, &resource) != Decision::Allow);
            }
        }
    }
}
