//! Regional requests: a partnership asks every member of a regional group (but itself) for the
//! same summary, one request to each, answered through each member's own queue; once none is
//! pending, the members' published releases are assembled into one regional summary. Only
//! published, gate-controlled figures enter it, added up as published: nothing finer than a
//! release, and nothing a release did not show (docs/privacy.md, "Requests for summaries").

use std::collections::BTreeMap;

use atlas_analytics::comparison::{ANNUALISED_QUARTER, QUARTERS_A_YEAR, rate_per_10000};
use atlas_domain::GssCode;
use atlas_store::audit::NewEntry;
use atlas_store::releases::Release;
use atlas_store::summary_requests::{self, NewRequest, RegionalRequest, SummaryRequest};
use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::analysis::{Analyses, AnalysisError};
use crate::requests::{NewSummaryRequest, releases_for, state};

/// A regional request as the requester makes it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewRegionalRequest {
    /// The regional group asked (one of `/api/v1/regional-groups`).
    pub group: String,
    /// Closed calendar quarters, such as `2025-Q4` (1 to 4).
    pub periods: Vec<String>,
    /// Breakdowns wanted: `agency_kind`, `indicator`, `age_band`, `record_kind`,
    /// `release_grid`.
    pub breakdowns: Vec<String>,
    /// What the summary is for.
    pub purpose: String,
    /// When it is needed by (today or later).
    pub needed_by: NaiveDate,
}

impl NewRegionalRequest {
    /// The request each member is asked.
    #[must_use]
    pub fn to_each_member(&self) -> NewSummaryRequest {
        NewSummaryRequest {
            periods: self.periods.clone(),
            breakdowns: self.breakdowns.clone(),
            purpose: self.purpose.clone(),
            needed_by: self.needed_by,
        }
    }
}

/// A published figure as a release shows it: a number, or `"c"`.
#[derive(Debug, Clone, PartialEq, Serialize, ToSchema)]
#[serde(untagged)]
pub enum PublishedFigure {
    /// The published number.
    Shown(u64),
    /// Suppressed by the publication gate (`"c"`), or not in the release at all (`null`).
    NotShown(Option<&'static str>),
}

impl PublishedFigure {
    /// Reads a release's entry: a number, `"c"`, or anything else as not in the release.
    fn read(value: &Value) -> Self {
        match value {
            Value::Number(number) => number.as_u64().map_or(Self::NotShown(None), Self::Shown),
            Value::String(text) if text == "c" => Self::NotShown(Some("c")),
            _ => Self::NotShown(None),
        }
    }

    const fn number(&self) -> Option<u64> {
        match self {
            Self::Shown(number) => Some(*number),
            Self::NotShown(_) => None,
        }
    }
}

/// The regional total of one row: the sum of the members' published figures. Where some are
/// not shown (suppressed, or missing from an older release), the total is at least `sum`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct RegionalTotal {
    /// The sum of the figures shown.
    pub sum: u64,
    /// How many members' figures are not shown: when more than 0, the true total is at least
    /// `sum`, and no more can be said.
    pub parts_not_shown: u32,
}

/// One row of a regional table: a category, each member's published figure, and their total.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionalRow {
    /// The category (`children`, an agency kind, an indicator, an age band…).
    pub category: String,
    /// Each member's published figure, in the order of the period's `partnerships`.
    pub values: Vec<PublishedFigure>,
    /// Their total.
    pub total: RegionalTotal,
}

/// One table of a regional summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionalTable {
    /// `headline` (children and records), or the breakdown: `agency_kind`, `indicator`,
    /// `age_band` or `record_kind`.
    pub breakdown: String,
    /// What the rows count: `records` or `distinct children`.
    pub counts: &'static str,
    /// The rows.
    pub rows: Vec<RegionalRow>,
}

/// One quarter of a regional summary.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionalPeriod {
    /// The calendar quarter.
    pub period: String,
    /// The members whose published release of the quarter is assembled, in column order.
    pub partnerships: Vec<String>,
    /// The members left out, each with the reason (declined, no release, agreement ended).
    pub missing: Vec<String>,
    /// Distinct children per 10,000 aged 0 to 17 a year over the partnerships assembled (the
    /// quarter annualised): only when every one's children are shown and its population known.
    pub rate_per_10000: Option<f64>,
    /// What the rate is, in words.
    pub rate_note: &'static str,
    /// The tables: the headline, then each breakdown asked for (`release_grid` is each
    /// member's own release, read there).
    pub tables: Vec<RegionalTable>,
}

/// One member's answer to a regional request.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct MemberAnswer {
    /// The member partnership.
    pub partnership: String,
    /// The request made to it; `None` for the requester itself (its own releases are used).
    pub request_id: Option<Uuid>,
    /// `open`, `question`, `accepted`, `answered`, `declined`, `own` for the requester, or
    /// `left_out` when its releases may no longer be read (its agreement ended, or the
    /// requester's role does not read its own partnership's releases).
    pub state: &'static str,
    /// Why it declined.
    pub decline_reason: Option<String>,
    /// Its published releases of the quarters asked (read each at
    /// `/api/v1/partnerships/{partnership}/releases/{id}`), once it has answered.
    pub releases: Vec<PublishedRelease>,
}

/// A published release a regional summary uses.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct PublishedRelease {
    /// The quarter.
    pub period: String,
    /// The release.
    pub id: Uuid,
}

/// A regional request as its requester sees it, with the assembled summary once no member's
/// answer is pending.
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct RegionalSummary {
    /// Identifier.
    pub id: Uuid,
    /// The partnership asking.
    pub requester: String,
    /// The regional group.
    pub group: String,
    /// Its members when asked.
    pub members: Vec<String>,
    /// Closed quarters.
    pub periods: Vec<String>,
    /// Breakdowns wanted.
    pub breakdowns: Vec<String>,
    /// What for.
    pub purpose: String,
    /// Needed by.
    pub needed_by: NaiveDate,
    /// Who asked.
    pub requested_by: String,
    /// When.
    pub requested_at: DateTime<Utc>,
    /// `waiting` while some member has not answered or declined, then `assembled`.
    pub state: &'static str,
    /// Past its needed-by date and still waiting.
    pub overdue: bool,
    /// The members still to answer.
    pub waiting_for: Vec<String>,
    /// Each member's answer.
    pub answers: Vec<MemberAnswer>,
    /// The assembled summary, quarter by quarter (empty while waiting).
    pub summary: Vec<RegionalPeriod>,
}

/// Each member's releases, for assembling; an error, with the reason, for a member left out
/// (its agreement to share releases with the requester has ended, say).
pub type MemberReleases = BTreeMap<String, Result<Vec<Release>, String>>;

/// The tables a breakdown adds: (breakdown, what is counted, where in a release's content).
const BREAKDOWN_TABLES: [(&str, &str, &str); 4] = [
    ("agency_kind", "records", "column_totals"),
    ("indicator", "records", "records_by_indicator"),
    ("age_band", "distinct children", "children_by_age_band"),
    ("record_kind", "records", "records_by_record_kind"),
];

/// The rows of one table of one release: (category, figure).
fn release_rows(content: &Value, breakdown: &str) -> Vec<(String, PublishedFigure)> {
    let summary = &content["summary"];
    match breakdown {
        "headline" => vec![
            (
                "children".to_owned(),
                PublishedFigure::read(&summary["children"]),
            ),
            (
                "records".to_owned(),
                PublishedFigure::read(&content["grand_total"]),
            ),
        ],
        "agency_kind" => content["columns"]
            .as_array()
            .into_iter()
            .flatten()
            .zip(content["column_totals"].as_array().into_iter().flatten())
            .map(|(kind, figure)| {
                (
                    kind.as_str().unwrap_or_default().to_owned(),
                    PublishedFigure::read(figure),
                )
            })
            .collect(),
        _ => {
            let key = BREAKDOWN_TABLES
                .iter()
                .find(|(name, ..)| *name == breakdown)
                .map_or("", |(_, _, key)| key);
            summary[key]
                .as_object()
                .into_iter()
                .flatten()
                .map(|(category, figure)| (category.clone(), PublishedFigure::read(figure)))
                .collect()
        }
    }
}

/// Assembles one table over the members' contents, in column order: the categories in the
/// order the first release gives them, each member's figure, and their total.
fn assemble_table(contents: &[&Value], breakdown: &str, counts: &'static str) -> RegionalTable {
    let per_member: Vec<Vec<(String, PublishedFigure)>> = contents
        .iter()
        .map(|content| release_rows(content, breakdown))
        .collect();
    let mut categories: Vec<String> = Vec::new();
    for (category, _) in per_member.iter().flatten() {
        if !categories.contains(category) {
            categories.push(category.clone());
        }
    }
    let rows = categories
        .into_iter()
        .map(|category| {
            let values: Vec<PublishedFigure> = per_member
                .iter()
                .map(|rows| {
                    rows.iter()
                        .find(|(name, _)| *name == category)
                        .map_or(PublishedFigure::NotShown(None), |(_, figure)| {
                            figure.clone()
                        })
                })
                .collect();
            let total = RegionalTotal {
                sum: values.iter().filter_map(PublishedFigure::number).sum(),
                parts_not_shown: u32::try_from(
                    values
                        .iter()
                        .filter(|value| value.number().is_none())
                        .count(),
                )
                .unwrap_or(u32::MAX),
            };
            RegionalRow {
                category,
                values,
                total,
            }
        })
        .collect();
    RegionalTable {
        breakdown: breakdown.to_owned(),
        counts,
        rows,
    }
}

/// The regional rate per 10,000 children a year over `contents`: only when every one shows
/// its children and its population.
fn regional_rate(contents: &[&Value]) -> Option<f64> {
    let mut children = 0_u64;
    let mut population = 0_i64;
    for content in contents {
        let summary = &content["summary"];
        children += PublishedFigure::read(&summary["children"]).number()?;
        population += summary["population"]["children_0_17"].as_i64()?;
    }
    let children = u32::try_from(children.saturating_mul(u64::from(QUARTERS_A_YEAR))).ok()?;
    (!contents.is_empty())
        .then(|| rate_per_10000(children, population))
        .flatten()
}

/// Assembles `regional` from its members' requests `asked` and, per member, its releases (or
/// why it is left out: the agreement ended, say), on `today`; with the summary's tables only
/// when `tables` (a list shows states alone).
#[must_use]
pub fn assemble(
    regional: RegionalRequest,
    asked: Vec<SummaryRequest>,
    releases: &MemberReleases,
    today: NaiveDate,
    tables: bool,
) -> RegionalSummary {
    let template = asked.first().cloned();
    let mut answers = Vec::new();
    let mut waiting_for = Vec::new();
    for member in &regional.members {
        let owned = releases
            .get(member)
            .and_then(|releases| releases.as_ref().ok())
            .map_or(&[][..], Vec::as_slice);
        let request = asked.iter().find(|request| request.owner_code == *member);
        let left_out = matches!(releases.get(member), Some(Err(_)));
        let answer_state = match request {
            // A member whose releases may no longer be read is not waited for.
            _ if left_out => "left_out",
            Some(request) => state(request, owned),
            None => "own",
        };
        if matches!(answer_state, "open" | "question" | "accepted") {
            waiting_for.push(member.clone());
        }
        // An answering member's releases once it has answered; the requester's own in force.
        let candidates = match request {
            Some(request) if answer_state == "answered" => releases_for(request, owned),
            Some(_) => Vec::new(),
            None => template
                .as_ref()
                .map_or_else(Vec::new, |template| releases_for(template, owned)),
        };
        let answered = candidates
            .into_iter()
            .filter(|release| release.is_published())
            .map(|release| PublishedRelease {
                period: release.period.clone(),
                id: release.id,
            })
            .collect();
        answers.push(MemberAnswer {
            partnership: member.clone(),
            request_id: request.map(|request| request.id),
            state: answer_state,
            decline_reason: request.and_then(|request| request.decline_reason.clone()),
            releases: answered,
        });
    }
    let Some(template) = template else {
        return empty(regional, answers, waiting_for, today);
    };
    let assembled = waiting_for.is_empty();
    let summary = if assembled && tables {
        template
            .periods
            .iter()
            .map(|period| assemble_period(period, &template.breakdowns, &answers, releases))
            .collect()
    } else {
        Vec::new()
    };
    RegionalSummary {
        id: regional.id,
        requester: regional.requester_code,
        group: regional.group_name,
        members: regional.members,
        periods: template.periods,
        breakdowns: template.breakdowns,
        purpose: template.purpose,
        needed_by: template.needed_by,
        requested_by: regional.requested_by,
        requested_at: regional.requested_at,
        state: if assembled { "assembled" } else { "waiting" },
        overdue: !assembled && template.needed_by < today,
        waiting_for,
        answers,
        summary,
    }
}

/// A regional request with no member requests (cannot happen: the store makes at least one).
fn empty(
    regional: RegionalRequest,
    answers: Vec<MemberAnswer>,
    waiting_for: Vec<String>,
    today: NaiveDate,
) -> RegionalSummary {
    RegionalSummary {
        id: regional.id,
        requester: regional.requester_code,
        group: regional.group_name,
        members: regional.members,
        periods: Vec::new(),
        breakdowns: Vec::new(),
        purpose: String::new(),
        needed_by: today,
        requested_by: regional.requested_by,
        requested_at: regional.requested_at,
        state: "waiting",
        overdue: false,
        waiting_for,
        answers,
        summary: Vec::new(),
    }
}

/// One quarter of the summary: the members whose published release of it is at hand.
fn assemble_period(
    period: &str,
    breakdowns: &[String],
    answers: &[MemberAnswer],
    releases: &MemberReleases,
) -> RegionalPeriod {
    let mut partnerships = Vec::new();
    let mut contents: Vec<&Value> = Vec::new();
    let mut missing = Vec::new();
    for answer in answers {
        let content = releases
            .get(&answer.partnership)
            .and_then(|releases| releases.as_ref().ok())
            .and_then(|releases| {
                answer
                    .releases
                    .iter()
                    .find(|release| release.period == period)
                    .and_then(|wanted| releases.iter().find(|release| release.id == wanted.id))
            })
            .map(|release| &release.content);
        match (content, releases.get(&answer.partnership)) {
            (_, Some(Err(reason))) => missing.push(format!("{}: {reason}", answer.partnership)),
            (Some(content), _) => {
                partnerships.push(answer.partnership.clone());
                contents.push(content);
            }
            (None, _) => missing.push(format!(
                "{}: {}",
                answer.partnership,
                match answer.state {
                    "declined" => "declined the request".to_owned(),
                    "own" => format!("your own partnership has published no release of {period}"),
                    _ => format!("no published release of {period}"),
                }
            )),
        }
    }
    let mut tables = vec![assemble_table(
        &contents,
        "headline",
        "distinct children and records",
    )];
    for (breakdown, counts, _) in BREAKDOWN_TABLES {
        if breakdowns.iter().any(|wanted| wanted == breakdown) {
            tables.push(assemble_table(&contents, breakdown, counts));
        }
    }
    RegionalPeriod {
        period: period.to_owned(),
        partnerships,
        missing,
        rate_per_10000: regional_rate(&contents),
        rate_note: ANNUALISED_QUARTER,
        tables,
    }
}

impl Analyses {
    /// Makes the regional request `request` of `requester` to the group's `members` (as
    /// stored, the requester possibly among them) by `requested_by` on `today`, audited with
    /// `entry`. The caller has checked that each member shares its releases with the requester.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for a request that does not check out, or a group with no
    /// member but the requester; [`AnalysisError::Store`].
    pub async fn make_regional_request(
        &self,
        requester: &GssCode,
        members: &[String],
        request: &NewRegionalRequest,
        today: NaiveDate,
        requested_by: &str,
        entry: &NewEntry,
    ) -> Result<(RegionalRequest, Vec<SummaryRequest>), AnalysisError> {
        let each = request.to_each_member();
        each.check(today).map_err(AnalysisError::Question)?;
        if members.iter().all(|member| member == requester.as_str()) {
            return Err(AnalysisError::Question(format!(
                "`group`: {} has no member but your own partnership",
                request.group
            )));
        }
        let breakdowns = each.distinct_breakdowns();
        let mut conn = self.database.connection().await?;
        Ok(summary_requests::create_regional(
            &mut conn,
            &request.group,
            members,
            &NewRequest {
                requester_code: requester.to_string(),
                owner_code: String::new(),
                periods: each.periods,
                breakdowns,
                purpose: each.purpose,
                needed_by: each.needed_by,
            },
            requested_by,
            entry,
        )
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BLACKPOOL: &str = "E06000009";
    const LANCASHIRE: &str = "E10000017";
    const ROCHDALE: &str = "E08000005";

    fn regional() -> RegionalRequest {
        RegionalRequest {
            id: Uuid::nil(),
            requester_code: "E06000008".to_owned(),
            group_name: "Lancashire cluster".to_owned(),
            members: vec![
                BLACKPOOL.to_owned(),
                ROCHDALE.to_owned(),
                LANCASHIRE.to_owned(),
            ],
            requested_by: "vic".to_owned(),
            requested_at: Utc::now(),
        }
    }

    fn asked(owner: &str, state: &str) -> SummaryRequest {
        SummaryRequest {
            id: Uuid::new_v4(),
            requester_code: "E06000008".to_owned(),
            owner_code: owner.to_owned(),
            periods: vec!["2024-Q1".to_owned()],
            breakdowns: vec!["age_band".to_owned()],
            purpose: "Sub-group".to_owned(),
            needed_by: "2024-06-30".parse().expect("a date"),
            requested_by: "vic".to_owned(),
            requested_at: Utc::now(),
            state: state.to_owned(),
            decided_by: None,
            decided_at: None,
            decline_reason: (state == "declined").then(|| "No capacity".to_owned()),
            messages: Value::Array(Vec::new()),
            regional_request_id: Some(Uuid::nil()),
        }
    }

    fn release(owner: &str, children: Value, young: Value, approved: bool) -> Release {
        Release {
            id: Uuid::new_v4(),
            partnership_code: GssCode::parse(owner).expect("a code"),
            version: 1,
            period: "2024-Q1".to_owned(),
            resolution: 6,
            threshold: 5,
            rounding: 1,
            content: serde_json::json!({
                "grand_total": 40,
                "summary": {
                    "children": children,
                    "population": {"children_0_17": 50_000},
                    "children_by_age_band": {"0-9": young, "10-12": 12},
                },
            }),
            suppressed_primary: 0,
            suppressed_secondary: 0,
            prepared_by: "ana".to_owned(),
            prepared_at: Utc::now(),
            approved_by: approved.then(|| "bo".to_owned()),
            approved_at: approved.then(Utc::now),
            withdrawn_by: None,
            withdrawn_at: None,
        }
    }

    fn today() -> NaiveDate {
        "2024-05-01".parse().expect("a date")
    }

    #[test]
    fn nothing_is_assembled_while_a_member_is_pending() {
        let mut releases = MemberReleases::new();
        releases.insert(
            BLACKPOOL.to_owned(),
            Ok(vec![release(BLACKPOOL, 20.into(), 8.into(), true)]),
        );
        releases.insert(
            LANCASHIRE.to_owned(),
            Ok(vec![release(LANCASHIRE, 30.into(), 9.into(), false)]),
        );
        releases.insert(ROCHDALE.to_owned(), Ok(Vec::new()));
        let summary = assemble(
            regional(),
            vec![
                asked(BLACKPOOL, "accepted"),
                asked(LANCASHIRE, "accepted"),
                asked(ROCHDALE, "declined"),
            ],
            &releases,
            today(),
            true,
        );
        assert_eq!(summary.state, "waiting");
        assert_eq!(summary.waiting_for, [LANCASHIRE]);
        assert!(summary.summary.is_empty());
        assert!(summary.answers[2].releases.is_empty(), "unpublished");
    }

    #[test]
    fn a_member_whose_agreement_ended_is_left_out_not_waited_for() {
        let mut releases = MemberReleases::new();
        releases.insert(
            BLACKPOOL.to_owned(),
            Ok(vec![release(BLACKPOOL, 20.into(), 8.into(), true)]),
        );
        releases.insert(
            LANCASHIRE.to_owned(),
            Err(
                "its agreement to share releases with your partnership is no longer in force"
                    .to_owned(),
            ),
        );
        releases.insert(ROCHDALE.to_owned(), Ok(Vec::new()));
        let summary = assemble(
            regional(),
            vec![
                asked(BLACKPOOL, "accepted"),
                asked(LANCASHIRE, "open"),
                asked(ROCHDALE, "declined"),
            ],
            &releases,
            today(),
            true,
        );
        assert_eq!(summary.state, "assembled");
        assert_eq!(summary.answers[2].state, "left_out");
        let period = &summary.summary[0];
        assert_eq!(period.partnerships, [BLACKPOOL]);
        assert!(
            period
                .missing
                .iter()
                .any(|reason| reason.starts_with(LANCASHIRE) && reason.contains("agreement")),
            "{:?}",
            period.missing
        );
    }

    #[test]
    fn totals_add_published_figures_and_say_how_many_are_not_shown() {
        let mut releases = MemberReleases::new();
        releases.insert(
            BLACKPOOL.to_owned(),
            Ok(vec![release(BLACKPOOL, 20.into(), "c".into(), true)]),
        );
        releases.insert(
            LANCASHIRE.to_owned(),
            Ok(vec![release(LANCASHIRE, 30.into(), 9.into(), true)]),
        );
        releases.insert(
            ROCHDALE.to_owned(),
            Err(
                "its agreement to share releases with your partnership is no longer in force"
                    .to_owned(),
            ),
        );
        let summary = assemble(
            regional(),
            vec![
                asked(BLACKPOOL, "accepted"),
                asked(LANCASHIRE, "accepted"),
                asked(ROCHDALE, "declined"),
            ],
            &releases,
            today(),
            true,
        );
        assert_eq!(summary.state, "assembled");
        let period = &summary.summary[0];
        assert_eq!(period.partnerships, [BLACKPOOL, LANCASHIRE]);
        assert_eq!(period.missing.len(), 1);
        assert!(
            period.missing[0].starts_with(ROCHDALE),
            "{:?}",
            period.missing
        );
        // 50 children over 100,000, annualised: 20 per 10,000.
        assert_eq!(period.rate_per_10000, Some(20.0));
        let headline = &period.tables[0];
        assert_eq!(
            headline.rows[0].total,
            RegionalTotal {
                sum: 50,
                parts_not_shown: 0
            }
        );
        let ages = &period.tables[1];
        assert_eq!(ages.breakdown, "age_band");
        assert_eq!(ages.rows[0].category, "0-9");
        assert_eq!(
            ages.rows[0].values,
            [
                PublishedFigure::NotShown(Some("c")),
                PublishedFigure::Shown(9)
            ]
        );
        assert_eq!(
            ages.rows[0].total,
            RegionalTotal {
                sum: 9,
                parts_not_shown: 1
            }
        );
    }
}
