//! A board's self-assessment against the five themes of the guidance Atlas serves, each key
//! question with its "look out for" prompts in the project's own words; the ratings, evidence
//! and actions the board records, kept as dated versions; and, for the questions of
//! "understanding what is happening", the evidence Atlas holds (docs/profiles.md,
//! "Self-assessment").

use std::collections::{BTreeMap, BTreeSet};

use atlas_domain::{AgencyKind, GssCode, Scope};
use atlas_store::audit::NewEntry;
use atlas_store::self_assessments::{self, SelfAssessment};
use atlas_store::{agencies, agreements, batches, partnerships, profiles, releases, summaries};
use chrono::{Months, NaiveDate};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::analysis::{Analyses, AnalysisError};
use crate::profiles::due_quarter;

/// Where the questions come from.
pub const SOURCE: &str = "Local Government Association, “Tackling Child Sexual Exploitation (CSE): Key Questions for Lead Members for Children's Services”, built on the five elements of an effective response in the LGA and Barnardo's practice briefing (www.local.gov.uk/cse); the questions here are the project's own wording of its key questions and “look out for” points";

/// A theme of the guidance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Theme {
    /// Its identifier.
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Its key questions.
    pub questions: &'static [Question],
}

/// A key question with what to look out for.
#[derive(Debug, Serialize, ToSchema)]
pub struct Question {
    /// Its identifier, such as `understanding.data_shared`.
    pub id: &'static str,
    /// The question.
    pub text: &'static str,
    /// What to look out for.
    pub look_out_for: &'static [&'static str],
    /// Whether Atlas fills in evidence for it.
    pub atlas_evidence: bool,
}

/// The five themes and their key questions.
pub const THEMES: [Theme; 5] = [
    Theme {
        id: "awareness",
        title: "Raising awareness",
        questions: &[
            Question {
                id: "awareness.threat",
                text: "Do we, and the people who work with children, know how child sexual exploitation shows itself in our area?",
                look_out_for: &[
                    "children and young people told about the risks in schools",
                    "parents and carers helped to recognise the signs and told where to find support",
                    "awareness in the wider community",
                ],
                atlas_evidence: false,
            },
            Question {
                id: "awareness.prevention",
                text: "Is there a programme to prevent exploitation, with resources and expertise others can draw on?",
                look_out_for: &[
                    "a preventative programme in place",
                    "specialist expertise partners can call on",
                ],
                atlas_evidence: false,
            },
            Question {
                id: "awareness.training",
                text: "How much training is there for professionals, and who receives it?",
                look_out_for: &[
                    "a multi-agency training programme across the region: outside experts, shared internal knowledge, e-learning",
                    "frontline staff trained beyond social care, police, health and education: children's homes, street wardens, park staff, pubs, clubs and hotels",
                ],
                atlas_evidence: false,
            },
        ],
    },
    Theme {
        id: "understanding",
        title: "Understanding what is happening",
        questions: &[
            Question {
                id: "understanding.assumed",
                text: "Do we assume child sexual exploitation is happening here unless there is clear evidence that it is not?",
                look_out_for: &[
                    "the partnership plans on the assumption that exploitation is happening locally",
                ],
                atlas_evidence: true,
            },
            Question {
                id: "understanding.data_shared",
                text: "Is data on child sexual exploitation recorded, who holds it, and is it shared?",
                look_out_for: &[
                    "data collated and held centrally",
                    "shared by police, social care, health and the other agencies",
                ],
                atlas_evidence: true,
            },
            Question {
                id: "understanding.profiled",
                text: "Is local data reviewed regularly to establish how common abuse is and what it looks like?",
                look_out_for: &[
                    "regular profiling exercises that include the voluntary sector",
                    "local hot spots identified",
                ],
                atlas_evidence: true,
            },
            Question {
                id: "understanding.wider_picture",
                text: "Are cases identified and data collected to inform the regional and national picture?",
                look_out_for: &[
                    "links with other boards to compare data and build a regional picture",
                    "a contribution to the national picture",
                    "self-assessment tools used by the board",
                ],
                atlas_evidence: true,
            },
        ],
    },
    Theme {
        id: "strategy",
        title: "Developing a strategic response",
        questions: &[
            Question {
                id: "strategy.strategy",
                text: "Is there a clear strategy agencies can refer to, an action plan ready for when a child is found to be at risk, and is the strategy cross-authority or regional?",
                look_out_for: &[
                    "a child-centred strategy whose core purpose is the welfare of children",
                    "links to related issues such as domestic abuse and going missing",
                    "all agencies' information brought together to disrupt and prosecute",
                ],
                atlas_evidence: false,
            },
            Question {
                id: "strategy.risk",
                text: "Has a risk assessment been done, and is there a clear referral route whose progress can be tracked?",
                look_out_for: &[
                    "a list of key risk indicators and vulnerabilities",
                    "toolkits and process maps in use",
                ],
                atlas_evidence: false,
            },
            Question {
                id: "strategy.response",
                text: "How often do multi-agency meetings happen and who attends; who leads at strategic and operational level; are information-sharing protocols in place?",
                look_out_for: &[
                    "frequent, consistently attended meetings",
                    "social care, police, health, education, youth offending, probation, housing, youth services and the voluntary sector involved",
                    "actions assigned with an accountable review",
                ],
                atlas_evidence: false,
            },
        ],
    },
    Theme {
        id: "support",
        title: "Supporting victims of exploitation",
        questions: &[
            Question {
                id: "support.tailored",
                text: "Are services shaped around each child at risk, with direct work with children who have been exploited or are at high risk?",
                look_out_for: &[
                    "the response decided by the child's needs and circumstances",
                    "children helped to recognise and leave the abuse",
                    "children's plans monitored and reviewed; long-term support",
                ],
                atlas_evidence: false,
            },
            Question {
                id: "support.early",
                text: "Do we intervene early to stop risks growing, and are services co-located and jointly funded?",
                look_out_for: &[
                    "pooled budgets",
                    "the voluntary sector engaged at strategic and operational levels",
                ],
                atlas_evidence: false,
            },
            Question {
                id: "support.accommodation",
                text: "Is there alternative accommodation and training for foster carers, and who gives intensive direct support?",
                look_out_for: &[
                    "specialist training for foster carers who can support children at risk",
                ],
                atlas_evidence: false,
            },
        ],
    },
    Theme {
        id: "policing",
        title: "Facilitating policing and prosecutions",
        questions: &[
            Question {
                id: "policing.evidence",
                text: "How do professionals gather and preserve evidence that supports the prosecution of perpetrators?",
                look_out_for: &[
                    "systems and technology to track those under suspicion",
                    "multi-agency working and risk-mapping tools that help the police",
                    "knowledge shared on high-risk areas and cases",
                ],
                atlas_evidence: false,
            },
            Question {
                id: "policing.disruption",
                text: "Is there a disruption plan, and how is it delivered?",
                look_out_for: &[
                    "the council joins disruption tactics such as child abduction warning notices",
                ],
                atlas_evidence: false,
            },
            Question {
                id: "policing.support",
                text: "What support do young people have through disclosure and investigation, and before, during and after a trial?",
                look_out_for: &["support at each stage of the case"],
                atlas_evidence: false,
            },
            Question {
                id: "policing.missing",
                text: "Who is best placed to hold return-from-missing interviews, so that what happened while missing is learnt?",
                look_out_for: &[
                    "interviews held by someone the child trusts, and what is learnt shared",
                ],
                atlas_evidence: false,
            },
        ],
    },
];

/// A question's rating.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Rating {
    /// Arrangements are effective.
    Green,
    /// Partly in place, or improving.
    Amber,
    /// Not in place.
    Red,
    /// Not assessed this time.
    NotAssessed,
}

/// An action's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ActionStatus {
    /// Not started.
    Open,
    /// Under way.
    InProgress,
    /// Done.
    Done,
}

/// An action agreed for a question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Action {
    /// What is to be done.
    pub action: String,
    /// Who owns it (a role or team, never a child).
    pub owner: String,
    /// When it is due.
    pub due: NaiveDate,
    /// How far it has got.
    pub status: ActionStatus,
}

/// The board's answer to one question.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Answer {
    /// The question's identifier.
    pub question: String,
    /// Its rating.
    pub rating: Rating,
    /// The board's evidence, in words.
    #[serde(default)]
    pub evidence: String,
    /// Actions agreed.
    #[serde(default)]
    pub actions: Vec<Action>,
}

/// A self-assessment as the board records it.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct NewAssessment {
    /// The day the board assessed itself (not in the future).
    pub assessed_on: NaiveDate,
    /// Answers; a question left out is not assessed.
    pub answers: Vec<Answer>,
}

/// The longest evidence text of one answer, in characters.
pub const MAX_EVIDENCE: usize = 4000;
/// The longest action or owner, in characters.
pub const MAX_ACTION: usize = 1000;
/// The most actions of one answer.
pub const MAX_ACTIONS: usize = 20;

/// Every question's identifier.
fn question_ids() -> BTreeSet<&'static str> {
    THEMES
        .iter()
        .flat_map(|theme| theme.questions.iter().map(|question| question.id))
        .collect()
}

/// Whether `text` holds a run of ten digits (an NHS number, spaced or not): free text a
/// partnership writes (assessments, requests) is about its arrangements, never about a child.
pub(crate) fn holds_nhs_number(text: &str) -> bool {
    let mut digits = 0;
    for character in text.chars() {
        if character.is_ascii_digit() {
            digits += 1;
            if digits >= 10 {
                return true;
            }
        } else if character != ' ' {
            digits = 0;
        }
    }
    false
}

impl NewAssessment {
    /// Checks the assessment against the questions and the limits.
    ///
    /// # Errors
    /// The reason, naming the question or field.
    pub fn check(&self, today: NaiveDate) -> Result<(), String> {
        if self.assessed_on > today {
            return Err(format!(
                "`assessed_on`: {} is in the future",
                self.assessed_on
            ));
        }
        let known = question_ids();
        let mut seen = BTreeSet::new();
        for answer in &self.answers {
            let question = answer.question.as_str();
            if !known.contains(question) {
                return Err(format!(
                    "`{question}` is not a question of the self-assessment; the questions are {}",
                    known.iter().copied().collect::<Vec<_>>().join(", ")
                ));
            }
            if !seen.insert(question) {
                return Err(format!("`{question}` is answered twice"));
            }
            if answer.evidence.chars().count() > MAX_EVIDENCE {
                return Err(format!(
                    "`{question}`: the evidence is longer than {MAX_EVIDENCE} characters"
                ));
            }
            if answer.actions.len() > MAX_ACTIONS {
                return Err(format!("`{question}`: more than {MAX_ACTIONS} actions"));
            }
            for action in &answer.actions {
                if action.action.trim().is_empty() || action.owner.trim().is_empty() {
                    return Err(format!(
                        "`{question}`: every action needs what is to be done and an owner"
                    ));
                }
                if action.action.chars().count() > MAX_ACTION
                    || action.owner.chars().count() > MAX_ACTION
                {
                    return Err(format!(
                        "`{question}`: an action or owner is longer than {MAX_ACTION} characters"
                    ));
                }
            }
            let texts = std::iter::once(answer.evidence.as_str()).chain(
                answer
                    .actions
                    .iter()
                    .flat_map(|action| [action.action.as_str(), action.owner.as_str()]),
            );
            if texts.into_iter().any(holds_nhs_number) {
                return Err(format!(
                    "`{question}`: the text holds what looks like an NHS number; a self-assessment is about the partnership's arrangements and never names or identifies a child"
                ));
            }
        }
        Ok(())
    }
}

/// What Atlas holds as evidence for one question.
#[derive(Debug, Clone, Serialize, Deserialize, ToSchema)]
pub struct Evidence {
    /// The question.
    pub question: String,
    /// What Atlas found, a sentence each.
    pub findings: Vec<String>,
}

/// A change of rating between the last two assessments.
#[derive(Debug, Serialize, ToSchema)]
pub struct RatingChange {
    /// The question.
    pub question: String,
    /// The rating before (null when it was not assessed).
    pub before: Option<Rating>,
    /// The rating now (null when it is not assessed).
    pub now: Option<Rating>,
}

/// An action past its due date and not done, in the latest assessment.
#[derive(Debug, Serialize, ToSchema)]
pub struct OverdueAction {
    /// The question.
    pub question: String,
    /// The action.
    #[serde(flatten)]
    pub action: Action,
    /// Days past due.
    pub days_overdue: i64,
}

/// The ratings of an assessment's answers, by question.
fn ratings(answers: &serde_json::Value) -> BTreeMap<String, Rating> {
    serde_json::from_value::<Vec<Answer>>(answers.clone())
        .unwrap_or_default()
        .into_iter()
        .map(|answer| (answer.question, answer.rating))
        .collect()
}

/// The questions whose rating differs between `before` and `now`.
#[must_use]
pub fn changes(before: &SelfAssessment, now: &SelfAssessment) -> Vec<RatingChange> {
    let (before, now) = (ratings(&before.answers), ratings(&now.answers));
    THEMES
        .iter()
        .flat_map(|theme| theme.questions.iter())
        .filter_map(|question| {
            // A question left out is not assessed.
            let rated = |ratings: &BTreeMap<String, Rating>| {
                ratings
                    .get(question.id)
                    .copied()
                    .filter(|rating| *rating != Rating::NotAssessed)
            };
            let (was, is) = (rated(&before), rated(&now));
            (was != is).then(|| RatingChange {
                question: question.id.to_owned(),
                before: was,
                now: is,
            })
        })
        .collect()
}

/// The actions of `latest` past their due date on `today` and not done.
#[must_use]
pub fn overdue(latest: &SelfAssessment, today: NaiveDate) -> Vec<OverdueAction> {
    serde_json::from_value::<Vec<Answer>>(latest.answers.clone())
        .unwrap_or_default()
        .into_iter()
        .flat_map(|answer| {
            let question = answer.question;
            answer.actions.into_iter().filter_map(move |action| {
                (action.due < today && action.status != ActionStatus::Done).then(|| OverdueAction {
                    question: question.clone(),
                    days_overdue: (today - action.due).num_days(),
                    action,
                })
            })
        })
        .collect()
}

/// `count` with its noun, singular for one.
fn plural(count: usize, singular: &str, plural: &str) -> String {
    format!("{count} {}", if count == 1 { singular } else { plural })
}

/// Partnerships in words: "no partnership", or how many with their codes.
fn listing(codes: Vec<String>) -> String {
    match codes.as_slice() {
        [] => "no partnership".to_owned(),
        [one] => format!("1 partnership ({one})"),
        many => format!("{} partnerships ({})", many.len(), many.join(", ")),
    }
}

impl Analyses {
    /// What Atlas holds on `today` as evidence for the questions of "understanding what is
    /// happening" about `code`: who shared data in the last quarter that ended
    /// `days_after_quarter` days ago or more (the profile schedule's quarter), whether profiles
    /// were produced on schedule and included the voluntary sector, the hot spot areas of the
    /// latest, agreements and releases with other partnerships, and the frozen figures the
    /// national export holds.
    ///
    /// # Errors
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn atlas_evidence(
        &self,
        code: &GssCode,
        today: NaiveDate,
        days_after_quarter: u32,
    ) -> Result<Vec<Evidence>, AnalysisError> {
        let quarter = due_quarter(today, days_after_quarter);
        let (first, last) = crate::export::quarter(&quarter)
            .ok_or_else(|| AnalysisError::Internal(format!("{quarter} is not a quarter")))?;
        let four: Vec<String> = (0..4)
            .map(|back| {
                atlas_analytics::gate::label(
                    atlas_analytics::emerging::Step::Quarter,
                    first - Months::new(3 * back),
                )
            })
            .collect();
        let mut conn = self.database.connection().await?;
        partnerships::find(&mut conn, code)
            .await?
            .ok_or_else(|| AnalysisError::unknown(code))?;
        let serving: Vec<agencies::Agency> = agencies::list(&mut conn)
            .await?
            .into_iter()
            .filter(|agency| agency.partnerships.contains(code))
            .collect();
        let sent = batches::of_period(&mut conn, code.as_str(), first, last).await?;
        let sharing: Vec<&agencies::Agency> = serving
            .iter()
            .filter(|agency| {
                sent.iter()
                    .any(|batch| batch.agency_id == agency.id && batch.status == "committed")
            })
            .collect();
        let shared: BTreeSet<AgencyKind> = sharing.iter().map(|agency| agency.kind).collect();
        let names = |kinds: &mut dyn Iterator<Item = AgencyKind>| {
            kinds
                .map(crate::profiles::kind_name)
                .collect::<Vec<_>>()
                .join(", ")
        };
        let not_shared = names(
            &mut AgencyKind::ALL
                .iter()
                .copied()
                .filter(|kind| !shared.contains(kind)),
        );
        let sharing_agencies = sharing.len();
        let data_shared = vec![
            if shared.is_empty() {
                format!("No agency shared records for {quarter} with Atlas.")
            } else {
                format!(
                    "Records for {quarter} were shared with Atlas by {} of {}: {}.",
                    plural(sharing_agencies, "agency", "agencies"),
                    plural(shared.len(), "kind", "kinds"),
                    names(&mut shared.iter().copied())
                )
            },
            if not_shared.is_empty() {
                "Every kind of agency shared records.".to_owned()
            } else {
                format!("No records for {quarter} from: {not_shared}.")
            },
        ];
        let listed = profiles::list(&mut conn, code.as_str()).await?;
        let mut profiled = Vec::new();
        for period in &four {
            let first_version = listed
                .iter()
                .filter(|profile| profile.period == *period)
                .min_by_key(|profile| profile.version);
            let due = crate::export::quarter(period)
                .map(|(_, end)| end + chrono::Days::new(u64::from(days_after_quarter)));
            profiled.push(match (first_version, due) {
                (Some(profile), Some(due))
                    if profile.generated_at.date_naive() <= due + chrono::Days::new(14) =>
                {
                    format!(
                        "{period}: profiled on {}, on schedule",
                        profile.generated_at.date_naive()
                    )
                }
                (Some(profile), _) => format!(
                    "{period}: profiled late, on {}",
                    profile.generated_at.date_naive()
                ),
                (None, _) => format!("{period}: no profile"),
            });
        }
        let latest_profile = match listed.first() {
            Some(version) => {
                profiles::find(
                    &mut conn,
                    code.as_str(),
                    &version.period,
                    Some(version.version),
                )
                .await?
            }
            None => None,
        };
        let mut profile_findings = vec![format!(
            "Profiles of the last four quarters: {}.",
            profiled.join("; ")
        )];
        let mut assumed = Vec::new();
        if let Some(profile) = &latest_profile {
            // The board edition: board members read this evidence, and it never shows an
            // exact count.
            let content = &profile.board_content;
            let vcs = crate::profiles::table_lines(content, "agency_kinds")
                .and_then(|(_, rows)| rows.into_iter().find(|row| row[0] == "voluntary sector"))
                .is_some_and(|row| row.get(2).is_some_and(|contributed| contributed == "yes"));
            profile_findings.push(format!(
                "The latest profile ({}, version {}) {} the voluntary sector.",
                profile.version.period,
                profile.version.version,
                if vcs {
                    "includes records from"
                } else {
                    "has no records from"
                }
            ));
            let areas = crate::profiles::table_lines(content, "hotspot_areas")
                .map_or(0, |(_, rows)| rows.len());
            let hot = if areas == 0 {
                format!(
                    "It identified no hot spot area at 95 % or more in {}.",
                    profile.version.period
                )
            } else {
                format!(
                    "It identified {areas} hot spot area{} at 95 % or more in {}.",
                    if areas == 1 { "" } else { "s" },
                    profile.version.period
                )
            };
            profile_findings.push(hot.clone());
            let children = match &content["scale"]["children"] {
                serde_json::Value::String(_) => {
                    format!("fewer than {}", atlas_analytics::gate::THRESHOLD + 1)
                }
                figure => figure.to_string(),
            };
            assumed.push(format!(
                "Atlas holds records of {children} children in {} (the board edition's figure).",
                profile.version.period
            ));
            assumed.push(hot);
        } else {
            profile_findings.push("No profile has been produced yet.".to_owned());
            assumed.push("No profile has been produced yet, so Atlas cannot say how many children are known.".to_owned());
        }
        let in_force = |agreement: &agreements::Agreement| {
            agreement.revoked_at.is_none()
                && agreement.valid_from <= today
                && agreement.valid_to.is_none_or(|to| to >= today)
        };
        let all_agreements = agreements::list(&mut conn).await?;
        let given: Vec<&agreements::Agreement> = all_agreements
            .iter()
            .filter(|agreement| agreement.from == *code && in_force(agreement))
            .collect();
        let received = agreements::sharing_with(&mut conn, code, today).await?;
        let published = releases::list(&mut conn, code.as_str())
            .await?
            .into_iter()
            .filter(releases::Release::is_published)
            .count();
        let mut read_from = 0;
        for (partner, scopes) in &received {
            if scopes.contains(&Scope::Releases) {
                read_from += releases::list(&mut conn, partner.as_str())
                    .await?
                    .into_iter()
                    .filter(releases::Release::is_published)
                    .count();
            }
        }
        let frozen = summaries::frozen(&mut conn, &[code.to_string()], &four).await?;
        let exported: Vec<&String> = four
            .iter()
            .filter(|period| frozen.contains_key(&(code.to_string(), (*period).clone())))
            .collect();
        let wider = vec![
            format!(
                "Agreements in force: the partnership shares with {}; {} with it.",
                listing(
                    given
                        .iter()
                        .map(|agreement| agreement.to.to_string())
                        .collect()
                ),
                match received.len() {
                    0 => "no partnership shares".to_owned(),
                    1 => format!(
                        "{} shares",
                        listing(received.keys().map(ToString::to_string).collect())
                    ),
                    _ => format!(
                        "{} share",
                        listing(received.keys().map(ToString::to_string).collect())
                    ),
                }
            ),
            format!(
                "Releases: {published} published by the partnership; {read_from} published to it by partners."
            ),
            if exported.is_empty() {
                "No figures of the last four quarters are frozen for the national export yet."
                    .to_owned()
            } else {
                format!(
                    "Figures frozen for the national export and comparisons: {}.",
                    exported
                        .iter()
                        .map(|period| period.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            },
        ];
        Ok(vec![
            Evidence {
                question: "understanding.assumed".to_owned(),
                findings: assumed,
            },
            Evidence {
                question: "understanding.data_shared".to_owned(),
                findings: data_shared,
            },
            Evidence {
                question: "understanding.profiled".to_owned(),
                findings: profile_findings,
            },
            Evidence {
                question: "understanding.wider_picture".to_owned(),
                findings: wider,
            },
        ])
    }

    /// Records `assessment` of `code` on `today` by `recorded_by`, with Atlas's evidence of
    /// the day, audited with `entry`.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for an assessment that does not fit the questions or the
    /// limits; [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn record_assessment(
        &self,
        code: &GssCode,
        assessment: &NewAssessment,
        today: NaiveDate,
        days_after_quarter: u32,
        recorded_by: &str,
        entry: &NewEntry,
    ) -> Result<SelfAssessment, AnalysisError> {
        assessment.check(today).map_err(AnalysisError::Question)?;
        let evidence = self.atlas_evidence(code, today, days_after_quarter).await?;
        let answers = serde_json::to_value(&assessment.answers)
            .map_err(|err| AnalysisError::Internal(format!("answers: {err}")))?;
        let evidence = serde_json::to_value(&evidence)
            .map_err(|err| AnalysisError::Internal(format!("evidence: {err}")))?;
        let mut conn = self.database.connection().await?;
        Ok(self_assessments::record(
            &mut conn,
            code.as_str(),
            assessment.assessed_on,
            &answers,
            &evidence,
            recorded_by,
            entry,
        )
        .await?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(text: &str) -> NaiveDate {
        text.parse().expect("a date")
    }

    fn answer(question: &str, rating: Rating, actions: Vec<Action>) -> Answer {
        Answer {
            question: question.to_owned(),
            rating,
            evidence: "Minutes of the CSE sub-group, March".to_owned(),
            actions,
        }
    }

    fn action(due: &str, status: ActionStatus) -> Action {
        Action {
            action: "Invite the voluntary sector to upload".to_owned(),
            owner: "Partnership business manager".to_owned(),
            due: day(due),
            status,
        }
    }

    #[test]
    fn every_theme_of_the_guidance_has_its_questions_and_only_understanding_has_atlas_evidence() {
        assert_eq!(THEMES.len(), 5);
        assert!(THEMES.iter().all(|theme| !theme.questions.is_empty()));
        let with_evidence: Vec<&str> = THEMES
            .iter()
            .flat_map(|theme| theme.questions.iter())
            .filter(|question| question.atlas_evidence)
            .map(|question| question.id)
            .collect();
        assert!(
            with_evidence
                .iter()
                .all(|id| id.starts_with("understanding."))
        );
        assert_eq!(with_evidence.len(), 4);
        assert_eq!(question_ids().len(), 17, "identifiers are unique");
    }

    #[test]
    fn assessments_are_checked_against_the_questions_and_keep_identifiers_out() {
        let today = day("2026-11-30");
        let good = NewAssessment {
            assessed_on: today,
            answers: vec![answer(
                "understanding.profiled",
                Rating::Amber,
                vec![action("2027-01-31", ActionStatus::Open)],
            )],
        };
        assert_eq!(good.check(today), Ok(()));
        let future = NewAssessment {
            assessed_on: day("2026-12-01"),
            ..good.clone()
        };
        assert!(future.check(today).unwrap_err().contains("future"));
        let unknown = NewAssessment {
            answers: vec![answer("understanding.nope", Rating::Red, vec![])],
            ..good.clone()
        };
        assert!(unknown.check(today).unwrap_err().contains("not a question"));
        let twice = NewAssessment {
            answers: vec![good.answers[0].clone(), good.answers[0].clone()],
            ..good.clone()
        };
        assert!(twice.check(today).unwrap_err().contains("twice"));
        let mut nhs = good.clone();
        nhs.answers[0].evidence = "Child 943 476 5919 was missed".to_owned();
        assert!(nhs.check(today).unwrap_err().contains("NHS number"));
        let mut long = good;
        long.answers[0].evidence = "x".repeat(MAX_EVIDENCE + 1);
        assert!(long.check(today).is_err());
    }

    #[test]
    fn overdue_actions_and_changed_ratings_are_found() {
        let stored = |answers: Vec<Answer>| SelfAssessment {
            partnership_code: "E10000017".to_owned(),
            version: 1,
            assessed_on: day("2026-06-01"),
            recorded_by: "analyst".to_owned(),
            recorded_at: chrono::Utc::now(),
            answers: serde_json::to_value(answers).expect("answers"),
            atlas_evidence: serde_json::json!([]),
        };
        let before = stored(vec![answer("understanding.profiled", Rating::Red, vec![])]);
        let now = stored(vec![
            answer(
                "understanding.profiled",
                Rating::Amber,
                vec![
                    action("2026-11-01", ActionStatus::InProgress),
                    action("2026-10-01", ActionStatus::Done),
                    action("2027-01-01", ActionStatus::Open),
                ],
            ),
            answer("policing.disruption", Rating::Green, vec![]),
        ]);
        let changed = changes(&before, &now);
        assert_eq!(changed.len(), 2);
        assert_eq!(
            (changed[0].before, changed[0].now),
            (Some(Rating::Red), Some(Rating::Amber))
        );
        let late = overdue(&now, day("2026-11-30"));
        assert_eq!(late.len(), 1);
        assert_eq!(late[0].days_overdue, 29);
    }
}
