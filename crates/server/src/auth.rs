//! Authentication and authorisation in handlers' signatures.
//!
//! A handler that touches case or reference data takes an [`Authorized<G>`] argument, where the
//! guard `G` names the one [`Action`] the endpoint performs and loads the [`Resource`] it acts
//! on. Extracting it verifies the bearer token, applies the per-caller rate limit, opens the
//! request's audit entry, holds a token's agency to the partnerships it serves
//! ([`atlas_access::serving`]), and asks [`atlas_access::authorize`]; a handler without it
//! cannot reach the caller's identity, and one with it cannot run unless the policy allowed.
//! It also carries the [`RecordScope`] the policy granted: the case records the handler may
//! read (agency staff: their own agency's only), and handlers say through
//! [`Authorized::used_records_of`] whose records an answer used. The audit middleware
//! ([`crate::audit`]) then makes the entry durable before the response leaves.

use std::cell::RefCell;
use std::collections::BTreeSet;
use std::future::Future;
use std::marker::PhantomData;
use std::num::NonZeroU32;
use std::rc::Rc;
use std::sync::Arc;

use actix_web::dev::Payload;
use actix_web::http::header::AUTHORIZATION;
use actix_web::{FromRequest, HttpMessage as _, HttpRequest, web};
use atlas_access::token::TokenRejected;
use atlas_access::{
    Action, Principal, RecordScope, Registration, Resource, authorize, constrain, serving,
};
use atlas_domain::GssCode;
use atlas_store::audit::{
    MAX_RESOURCE_CHARS, MAX_VALUE_CHARS, NewEntry, Outcome, storable, storable_parameters,
};
use atlas_store::{Database, agencies, users};
use futures_util::future::LocalBoxFuture;
use governor::clock::{Clock as _, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tracing_actix_web::RequestId;

use crate::ApiError;
use crate::identity::KeyRing;
use atlas_app::settings::{AuthSettings, ServerSettings};

/// Verifies callers' tokens and limits their request rate; shared by every worker.
pub struct Authenticator {
    keys: Arc<KeyRing>,
    limiter: DefaultKeyedRateLimiter<String>,
    /// With `server.rate_limit_shared`: the sustained rate and burst counted in PostgreSQL.
    shared_limit: Option<(u32, u32)>,
    require_registration: bool,
}

impl Authenticator {
    /// Verifies tokens with `keys` and limits callers to the rate of `server`.
    #[must_use]
    pub fn new(keys: Arc<KeyRing>, auth: &AuthSettings, server: &ServerSettings) -> Self {
        let per_second = NonZeroU32::new(server.rate_limit_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(server.rate_limit_burst).unwrap_or(NonZeroU32::MIN);
        Self {
            keys,
            limiter: RateLimiter::keyed(Quota::per_second(per_second).allow_burst(burst)),
            shared_limit: server
                .rate_limit_shared
                .then_some((server.rate_limit_per_second, server.rate_limit_burst)),
            require_registration: auth.require_registration,
        }
    }

    /// The caller of `request`, or 401 (no detail of why: that goes to the log), 403 (a token
    /// the provider signed without Atlas's claims, saying which) or 429. A token naming a key
    /// not known has the keys loaded again first (at most once per `auth.min_refresh_secs`).
    async fn authenticate(&self, request: &HttpRequest) -> Result<Principal, ApiError> {
        let refused = |reason: &dyn std::fmt::Display| {
            tracing::info!(%reason, path = request.path(), "bearer token refused");
            ApiError::Unauthorized("a valid bearer token is required".to_owned())
        };
        let header = request
            .headers()
            .get(AUTHORIZATION)
            .ok_or_else(|| refused(&"no Authorization header"))?;
        let token = header
            .to_str()
            .ok()
            .and_then(|value| {
                let (scheme, token) = value.trim().split_once(' ')?;
                scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
            })
            .ok_or_else(|| refused(&"the Authorization header is not a bearer token"))?;
        let mut verifier = self.keys.current();
        // Only a token that could verify, naming a key not known, has the keys loaded again.
        if let Some(kid) = atlas_access::token::key_id(token)
            && !verifier
                .as_ref()
                .is_some_and(|verifier| verifier.knows(&kid))
        {
            verifier = self.keys.refresh_for_unknown_key().await;
        }
        let verifier = verifier.ok_or_else(|| refused(&"no verification keys are loaded"))?;
        let principal = verifier.verify(token).map_err(|err| match err {
            // Signed by a trusted key, but not mapped for Atlas: saying which claim is wrong
            // helps the provider's administrator and nobody who cannot already sign tokens.
            TokenRejected::Claims(_) => {
                tracing::info!(reason = %err, path = request.path(), "bearer token unusable");
                ApiError::Forbidden(format!(
                    "{err}; ask your identity provider's administrator to map it (docs/access.md, \
                     \"Claims as providers send them\")"
                ))
            }
            other => refused(&other),
        })?;
        if principal.subject.chars().any(char::is_control) {
            return Err(refused(&"the token's sub holds a control character"));
        }
        if let Err(not_until) = self.limiter.check_key(&principal.subject) {
            let wait = not_until.wait_time_from(DefaultClock::default().now());
            return Err(ApiError::TooManyRequests(wait.as_secs().max(1)));
        }
        if self.limiter.len() > 100_000 {
            self.limiter.retain_recent();
        }
        if let Some((per_second, burst)) = self.shared_limit
            && let Some(database) = request.app_data::<web::Data<Database>>()
        {
            // Counted across every process; a database that cannot count does not stop the
            // request (it needs the database anyway, and says so itself).
            // A pool exhausted by a flood must not hold every request for the pool's timeout.
            let admission = match tokio::time::timeout(
                std::time::Duration::from_millis(250),
                database.connection(),
            )
            .await
            {
                Ok(Ok(mut conn)) => {
                    atlas_store::rate_limits::admit(
                        &mut conn,
                        &principal.subject,
                        per_second,
                        burst,
                    )
                    .await
                }
                Ok(Err(err)) => Err(err),
                Err(_) => Err(atlas_store::StoreError::Pool(
                    "no connection free within 250 ms".to_owned(),
                )),
            };
            match admission {
                Ok(atlas_store::rate_limits::Admission::Refused { retry_after_secs }) => {
                    #[expect(
                        clippy::cast_possible_truncation,
                        clippy::cast_sign_loss,
                        reason = "a wait of a few seconds, rounded up"
                    )]
                    let wait = retry_after_secs.ceil().max(1.0) as u64;
                    return Err(ApiError::TooManyRequests(wait));
                }
                Ok(atlas_store::rate_limits::Admission::Admitted) => {}
                Err(err) => {
                    tracing::debug!(error = %err, "the shared rate limit could not be counted");
                }
            }
        }
        Ok(principal)
    }
}

/// What one endpoint does: its [`Action`] and how to load the resource it acts on.
pub trait Guard: 'static {
    /// The action the endpoint performs.
    const ACTION: Action;
    /// What the handler receives besides the principal (a loaded batch, or nothing).
    type Target: 'static;

    /// Loads the resource from the request's path and the database. Errors (an unknown id,
    /// a malformed path) are answered as they are, and audited as failed.
    fn load(
        request: &HttpRequest,
        principal: &Principal,
        database: &Database,
    ) -> impl Future<Output = Result<(Resource, Self::Target), ApiError>>;
}

/// Where the request's [`AuditDraft`] is put once the caller is known: the audit middleware
/// puts an empty slot in the request's extensions before the request is routed, and keeps a
/// handle on it, so it finds the draft whatever the handler did (even when it panicked).
#[derive(Clone, Default)]
pub struct DraftSlot(Rc<RefCell<Option<AuditDraft>>>);

impl DraftSlot {
    /// The request's draft, once an [`Authorized`] extractor has opened it.
    #[must_use]
    pub fn draft(&self) -> Option<AuditDraft> {
        self.0.borrow().clone()
    }

    fn put(&self, draft: AuditDraft) {
        *self.0.borrow_mut() = Some(draft);
    }
}

/// The request's audit entry while the request runs. The audit middleware finds it in its
/// [`DraftSlot`] when the response is ready and makes it durable, unless the handler already
/// committed it with its change.
#[derive(Clone)]
pub struct AuditDraft(Rc<RefCell<DraftState>>);

struct DraftState {
    entry: NewEntry,
    denied: bool,
    committed: bool,
}

impl AuditDraft {
    /// The entry to append for a response with `status`, or `None` when the handler has
    /// already committed it.
    #[must_use]
    pub fn finish(&self, status: actix_web::http::StatusCode) -> Option<NewEntry> {
        let state = self.0.borrow();
        if state.committed {
            return None;
        }
        let mut entry = state.entry.clone();
        entry.outcome = if state.denied {
            Outcome::Denied
        } else if status.is_success() || status.is_redirection() {
            Outcome::Allowed
        } else {
            Outcome::Failed
        };
        Some(entry)
    }
}

/// Proof that the policy allowed the caller this endpoint's action, with the caller, the case
/// records it may read, what the guard loaded, and the request's audit entry.
pub struct Authorized<G: Guard> {
    principal: Principal,
    scope: RecordScope,
    target: G::Target,
    draft: AuditDraft,
    guard: PhantomData<G>,
}

impl<G: Guard> Authorized<G> {
    /// The caller.
    #[must_use]
    pub const fn principal(&self) -> &Principal {
        &self.principal
    }

    /// What the guard loaded.
    #[must_use]
    pub const fn target(&self) -> &G::Target {
        &self.target
    }

    /// The case records the caller may read: every record of the partnerships it was allowed,
    /// or, for agency staff, only those their agency contributed. Every read of case records
    /// goes through it ([`atlas_app::RecordCache::records`]).
    #[must_use]
    pub const fn record_scope(&self) -> RecordScope {
        self.scope
    }

    /// Records in the audit entry that the answer used the case records of these partnerships
    /// (the entry's `records_of`), so each can list who read its records.
    pub fn used_records_of<C: std::fmt::Display>(&self, codes: impl IntoIterator<Item = C>) {
        let entry = &mut self.draft.0.borrow_mut().entry;
        let mut all: BTreeSet<String> = entry.records_of.drain(..).collect();
        all.extend(codes.into_iter().map(|code| code.to_string()));
        entry.records_of = all.into_iter().collect();
    }

    /// Records how many rows or cells the response returns.
    pub fn returned(&self, rows: usize) {
        self.draft.0.borrow_mut().entry.rows_returned = i64::try_from(rows).ok();
    }

    /// Adds a parameter to the audit entry (a body field, say), made storable and bounded.
    pub fn note(&self, name: &str, value: impl std::fmt::Display) {
        let value = storable(&value.to_string(), MAX_VALUE_CHARS);
        self.draft
            .0
            .borrow_mut()
            .entry
            .parameters
            .insert(name.to_owned(), value);
    }

    /// The entry to append inside the transaction of a change; call [`Self::committed`] once
    /// that transaction has committed, so the middleware does not append it again.
    #[must_use]
    pub fn change_entry(&self) -> NewEntry {
        let mut entry = self.draft.0.borrow().entry.clone();
        entry.outcome = Outcome::Allowed;
        entry
    }

    /// Says the handler's transaction committed the entry from [`Self::change_entry`].
    pub fn committed(&self) {
        self.draft.0.borrow_mut().committed = true;
    }
}

impl<G: Guard> FromRequest for Authorized<G> {
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, _: &mut Payload) -> Self::Future {
        let request = request.clone();
        Box::pin(async move {
            let authenticator = request
                .app_data::<web::Data<Authenticator>>()
                .ok_or_else(|| ApiError::Internal("no authenticator is configured".to_owned()))?;
            let principal = authenticator.authenticate(&request).await?;
            let database = request
                .app_data::<web::Data<Database>>()
                .ok_or_else(|| ApiError::Internal("no database is configured".to_owned()))?
                .clone();
            let draft = AuditDraft(Rc::new(RefCell::new(DraftState {
                entry: open_entry(&request, &principal, G::ACTION),
                denied: false,
                committed: false,
            })));
            if let Some(slot) = request.extensions().get::<DraftSlot>() {
                slot.put(draft.clone());
            }
            let principal = registered(principal, &database, authenticator.require_registration)
                .await
                .inspect_err(|err| {
                    if matches!(err, ApiError::Forbidden(_)) {
                        draft.0.borrow_mut().denied = true;
                    }
                })?;
            draft.0.borrow_mut().entry.roles = principal.role_names();
            let deny = |denial: atlas_access::Denial| {
                draft.0.borrow_mut().denied = true;
                ApiError::Forbidden(denial.to_string())
            };
            let served = served_partnerships(&principal, &database).await?;
            serving(&principal, served.as_ref()).map_err(deny)?;
            let (resource, target) = G::load(&request, &principal, &database).await?;
            draft.0.borrow_mut().entry.partnership = partnership_of(&resource, &principal);
            let scope = authorize(&principal, G::ACTION, &resource).map_err(deny)?;
            Ok(Self {
                principal,
                scope,
                target,
                draft,
                guard: PhantomData,
            })
        })
    }
}

/// An extractor (a JSON body, a path, a query) whose failure is answered only after the policy
/// has allowed the caller. Take it beside an [`Authorized`] and call [`Deferred::into_inner`] in
/// the handler: a caller the policy refuses gets its 403 (audited as a denial) and learns
/// nothing of what the endpoint expects, however malformed its request.
pub struct Deferred<T>(Result<T, ApiError>);

impl<T> Deferred<T> {
    /// The extracted value, or the error extracting it met (400, 413…).
    ///
    /// # Errors
    /// That error.
    pub fn into_inner(self) -> Result<T, ApiError> {
        self.0
    }
}

impl<T> FromRequest for Deferred<T>
where
    T: FromRequest + 'static,
    T::Error: Into<actix_web::Error>,
    T::Future: 'static,
{
    type Error = ApiError;
    type Future = LocalBoxFuture<'static, Result<Self, ApiError>>;

    fn from_request(request: &HttpRequest, payload: &mut Payload) -> Self::Future {
        let extraction = T::from_request(request, payload);
        Box::pin(async move {
            Ok(Self(extraction.await.map_err(|err| {
                let err: actix_web::Error = err.into();
                err.as_error::<ApiError>()
                    .cloned()
                    .unwrap_or_else(|| ApiError::BadRequest(err.to_string()))
            })))
        })
    }
}

/// Holds a verified token to its subject's registration, if any ([`atlas_access::constrain`]).
async fn registered(
    principal: Principal,
    database: &Database,
    required: bool,
) -> Result<Principal, ApiError> {
    let mut conn = database.connection().await?;
    let registration = users::find(&mut conn, &principal.subject)
        .await?
        .map(|stored| {
            Ok::<_, ApiError>(Registration {
                partnership: stored.partnership,
                agency: stored.agency,
                roles: stored.roles.iter().copied().collect(),
                disabled: stored.disabled_at.is_some(),
            })
        })
        .transpose()?;
    constrain(principal, registration.as_ref(), required)
        .map_err(|denial| ApiError::Forbidden(denial.to_string()))
}

/// The partnerships the token's agency serves: `None` when the token names an agency this
/// service does not know, and an empty set when it names none (nothing to check).
async fn served_partnerships(
    principal: &Principal,
    database: &Database,
) -> Result<Option<BTreeSet<GssCode>>, ApiError> {
    let Some(agency) = principal.agency else {
        return Ok(Some(BTreeSet::new()));
    };
    let mut conn = database.connection().await?;
    Ok(agencies::served_by(&mut conn, agency).await?.map(|codes| {
        codes
            .iter()
            .filter_map(|code| GssCode::parse(code).ok())
            .collect()
    }))
}

/// The entry as far as it is known before the resource is loaded.
fn open_entry(request: &HttpRequest, principal: &Principal, action: Action) -> NewEntry {
    let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let parameters = storable_parameters(
        pairs
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    NewEntry {
        request_id: request
            .extensions()
            .get::<RequestId>()
            .map(ToString::to_string),
        subject: storable(&principal.subject, MAX_VALUE_CHARS),
        roles: principal.role_names(),
        partnership: Some(principal.partnership.to_string()),
        agency: principal.agency,
        action: action.as_str().to_owned(),
        resource: storable(request.path(), MAX_RESOURCE_CHARS),
        parameters,
        outcome: Outcome::Allowed,
        rows_returned: None,
        records_of: Vec::new(),
        caller_partnership: Some(principal.partnership.to_string()),
    }
}

/// The partnership whose data the request touches, for the audit trail.
fn partnership_of(resource: &Resource, principal: &Principal) -> Option<String> {
    match resource {
        Resource::Instance => None,
        Resource::Partnership { code, .. } => Some(code.to_string()),
        Resource::Agency { .. } => Some(principal.partnership.to_string()),
        Resource::Batch { partnerships, .. } => partnerships
            .get(&principal.partnership)
            .or_else(|| partnerships.first())
            .map(ToString::to_string),
    }
}
