//! The partnership beside its neighbours: records, distinct children and rates per 10,000
//! children aged 0 to 17 per closed period, by agency kind and indicator, with rank, difference
//! from the group mean and direction of travel. The partnership's own figures are exact; a
//! neighbour appears with figures only under an agreement in force that shares `comparison`,
//! and then only with its frozen summaries from the publication gate (docs/privacy.md,
//! "Comparisons").

use std::collections::BTreeMap;

use atlas_access::{RecordScope, Scope};
use atlas_analytics::comparison::{
    DIRECTION_ALPHA, Direction, QUARTERS_A_YEAR, count, direction, ranks, rate_per_10000,
};
use atlas_analytics::emerging::Step;
use atlas_analytics::gate::{self, ClosedWindow, PeriodSummary, Shown, THRESHOLD, closed_window};
use atlas_domain::{AgencyKind, GssCode, Indicator};
use atlas_store::populations::{self, PartnershipPopulation};
use atlas_store::{agreements, batches, partnerships};
use chrono::{Datelike as _, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use crate::analysis::{Analyses, AnalysisError, blocking};
use crate::figures::{Figure, PopulationView};
use crate::products::period_summaries;

/// The most periods one comparison may cover.
const MAX_PERIODS: usize = 60;

/// A member's figures as the comparison shows them.
enum Figures {
    /// The partnership's own: exact.
    Own(atlas_analytics::comparison::Counts),
    /// A sharing neighbour's: its frozen summary of each period.
    Gated(Vec<PeriodSummary>),
    /// A member that does not share `comparison` with the partnership: no figures.
    NotShared,
}

/// One member of the group.
struct Member {
    code: String,
    name: String,
    figures: Figures,
    population: Option<PartnershipPopulation>,
    period_populations: Vec<Option<i64>>,
    /// Whether any agency contributed records for each period: a period without is "no data".
    contributed: Vec<bool>,
}

/// A member's figures over the whole window, as shown; `None` where it shares none.
struct WindowTotals {
    records: Option<Figure>,
    by_agency_kind: Vec<Option<Figure>>,
    by_indicator: Vec<Option<Figure>>,
    /// The partnership's own only: a neighbour's distinct children over several periods are
    /// not published (windows that differ by a period would difference to that period's new
    /// children).
    children: Option<Figure>,
}

impl Member {
    /// Its figures over the whole window.
    fn totals(&self) -> WindowTotals {
        match &self.figures {
            Figures::Own(counts) => WindowTotals {
                records: Some(Figure::Exact(counts.records.iter().flatten().sum())),
                by_agency_kind: (0..AgencyKind::ALL.len())
                    .map(|kind| {
                        Some(Figure::Exact(
                            counts.records.iter().map(|row| row[kind]).sum(),
                        ))
                    })
                    .collect(),
                by_indicator: counts
                    .indicators
                    .iter()
                    .map(|value| Some(Figure::Exact(*value)))
                    .collect(),
                children: Some(Figure::Exact(counts.children_overall)),
            },
            Figures::Gated(summaries) => WindowTotals {
                records: Some(Figure::Gated(Shown::sum(
                    summaries.iter().map(|s| s.records),
                ))),
                by_agency_kind: (0..AgencyKind::ALL.len())
                    .map(|kind| {
                        Some(Figure::Gated(Shown::sum(
                            summaries.iter().map(|s| s.records_by_agency_kind[kind]),
                        )))
                    })
                    .collect(),
                by_indicator: (0..Indicator::ALL.len())
                    .map(|indicator| {
                        Some(Figure::Gated(Shown::sum(
                            summaries.iter().map(|s| s.records_by_indicator[indicator]),
                        )))
                    })
                    .collect(),
                children: None,
            },
            Figures::NotShared => WindowTotals {
                records: None,
                by_agency_kind: vec![None; AgencyKind::ALL.len()],
                by_indicator: vec![None; Indicator::ALL.len()],
                children: None,
            },
        }
    }

    /// Whether any period has data.
    fn has_data(&self) -> bool {
        self.contributed.iter().any(|contributed| *contributed)
    }

    /// Records of each period, as shown; `None` where there are no data.
    fn period_records(&self, periods: usize) -> Vec<Option<Figure>> {
        let shown: Vec<Option<Figure>> = match &self.figures {
            Figures::Own(counts) => counts
                .records
                .iter()
                .map(|row| Some(Figure::Exact(row.iter().sum::<u32>())))
                .collect(),
            Figures::Gated(summaries) => summaries
                .iter()
                .map(|s| Some(Figure::Gated(s.records)))
                .collect(),
            Figures::NotShared => vec![None; periods],
        };
        self.only_with_data(shown, None)
    }

    /// Distinct children of each period as shown, and the number a rate may use; `None` where
    /// there are no data.
    fn period_children(&self, periods: usize) -> Vec<(Option<Figure>, Option<u32>)> {
        let shown: Vec<(Option<Figure>, Option<u32>)> = match &self.figures {
            Figures::Own(counts) => counts
                .children
                .iter()
                .map(|children| (Some(Figure::Exact(*children)), Some(*children)))
                .collect(),
            Figures::Gated(summaries) => summaries
                .iter()
                .map(|s| (Some(Figure::Gated(s.children)), s.children.number()))
                .collect(),
            Figures::NotShared => vec![(None, None); periods],
        };
        self.only_with_data(shown, (None, None))
    }

    /// `shown`, with `none` in the periods no agency contributed to.
    fn only_with_data<T: Clone>(&self, shown: Vec<T>, none: T) -> Vec<T> {
        shown
            .into_iter()
            .zip(&self.contributed)
            .map(|(value, contributed)| if *contributed { value } else { none.clone() })
            .collect()
    }

    /// The annualised rate of each period, from the shown children.
    fn period_rates(&self, periods: usize, per_year: u32) -> Vec<Option<f64>> {
        self.period_children(periods)
            .iter()
            .zip(&self.period_populations)
            .map(|((_, children), population)| {
                children
                    .zip(*population)
                    .and_then(|(children, population)| {
                        rate_per_10000(children.saturating_mul(per_year), population)
                    })
            })
            .collect()
    }

    /// The mean of the annualised rates of the periods with data, when each of them has one:
    /// the member's rate over the window, comparable between members whose figures are exact
    /// and gated. `None` when no period has data.
    fn rate(&self, periods: usize, per_year: u32) -> Option<f64> {
        let rates: Option<Vec<f64>> = self
            .period_rates(periods, per_year)
            .into_iter()
            .zip(&self.contributed)
            .filter(|(_, contributed)| **contributed)
            .map(|(rate, _)| rate)
            .collect();
        #[expect(clippy::cast_precision_loss, reason = "at most 60 periods")]
        rates
            .filter(|rates| !rates.is_empty())
            .map(|rates| (rates.iter().sum::<f64>() / rates.len() as f64 * 10.0).round() / 10.0)
    }
}

/// What a comparison is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ComparisonQuestion {
    /// Quarters or months.
    pub step: Step,
    /// Which partnerships are set beside it.
    pub group: Group,
    /// A day of the first period (default: four quarters or twelve months before `to`'s).
    pub from: Option<NaiveDate>,
    /// A day of the last period (default: the last closed period).
    pub to: Option<NaiveDate>,
}

/// A comparison, and the partnerships whose (gated) figures it shows besides the partnership's
/// own.
#[derive(Debug)]
pub struct Comparison {
    /// The answer.
    pub view: ComparisonView,
    /// Members sharing `comparison` with the partnership: their frozen summaries are in it.
    pub shared_by: Vec<GssCode>,
}

impl Analyses {
    /// `code` beside its neighbours or comparators over whole periods closed by `today`; its own
    /// figures over the records within `scope`.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for a period that cannot be compared;
    /// [`AnalysisError::NotFound`] for an unknown partnership or a missing comparator group;
    /// [`AnalysisError::Store`].
    pub async fn comparison(
        &self,
        code: &GssCode,
        scope: RecordScope,
        question: &ComparisonQuestion,
        today: NaiveDate,
    ) -> Result<Comparison, AnalysisError> {
        let step = question.step;
        let comparators = question.group == Group::Comparators;
        let default_periods = if step == Step::Quarter { 4 } else { 12 };
        let window = closed_window(
            step,
            question.from,
            question.to,
            today,
            default_periods,
            MAX_PERIODS,
        )
        .map_err(|err| {
            AnalysisError::Question(format!("{err}; compare by quarter or shorten the range"))
        })?;
        let periods = window.starts.len();
        let database = &self.database;
        let cache = &self.cache;
        let (partnership, codes, sharing, mut populations, mut names, mut contributed) = {
            let mut conn = database.connection().await?;
            let partnership = partnerships::find(&mut conn, code)
                .await?
                .ok_or_else(|| AnalysisError::unknown(code))?;
            let mut codes = vec![partnership.code.to_string()];
            if comparators {
                let group = partnerships::comparators(&mut conn, code).await?;
                if group.is_empty() {
                    return Err(AnalysisError::NotFound(format!(
                        "{code} has no comparator group: import one with `atlas reference import --comparators FILE`"
                    )));
                }
                codes.extend(group);
            } else {
                codes.extend(partnership.neighbours.iter().map(ToString::to_string));
            }
            let sharing: Vec<GssCode> = agreements::sharing_with(&mut conn, code, today)
                .await?
                .into_iter()
                .filter(|(_, scopes)| scopes.contains(&Scope::Comparison))
                .filter(|(owner, _)| codes.iter().any(|code| code == owner))
                .map(|(owner, _)| owner)
                .collect();
            let populations = populations::of_partnerships(&mut conn, &codes).await?;
            let names = partnerships::names(&mut conn, &codes).await?;
            // Whether a partnership had data is asked only of those whose figures are shown: a
            // member without an agreement says nothing, not even that.
            let shown: Vec<String> = std::iter::once(&partnership.code)
                .chain(&sharing)
                .map(ToString::to_string)
                .collect();
            let contributed =
                batches::contributed_periods(&mut conn, &shown, &window.starts, window.last, None)
                    .await?;
            (partnership, codes, sharing, populations, names, contributed)
        };
        let mut summaries = period_summaries(database, cache, &sharing, &window).await?;
        let labels: Vec<String> = window
            .starts
            .iter()
            .map(|start| gate::label(step, *start))
            .collect();
        let mut members = Vec::with_capacity(codes.len());
        for member_code in &codes {
            let figures = if member_code == partnership.code.as_str() {
                let records = cache
                    .records(database, code, scope)
                    .await?
                    .unwrap_or_default();
                let (starts, last) = (window.starts.clone(), window.last);
                Figures::Own(
                    blocking("comparison", move || count(&records.records, &starts, last)).await?,
                )
            } else if sharing.iter().any(|owner| owner.as_str() == member_code) {
                Figures::Gated(
                    labels
                        .iter()
                        .map(|label| {
                            summaries
                                .remove(&(member_code.clone(), label.clone()))
                                .ok_or_else(|| {
                                    AnalysisError::Internal(format!(
                                        "no summary of {member_code} {label}"
                                    ))
                                })
                        })
                        .collect::<Result<_, _>>()?,
                )
            } else {
                Figures::NotShared
            };
            let member_populations = populations.remove(member_code).unwrap_or_default();
            members.push(Member {
                code: member_code.clone(),
                name: names
                    .remove(member_code)
                    .unwrap_or_else(|| member_code.clone()),
                figures,
                population: populations::for_year(&member_populations, window.last.year()).cloned(),
                period_populations: window
                    .starts
                    .iter()
                    .map(|start| {
                        populations::for_year(&member_populations, start.year())
                            .map(|p| p.population_0_17)
                    })
                    .collect(),
                contributed: contributed
                    .remove(member_code)
                    .unwrap_or_else(|| vec![false; periods]),
            });
        }

        let per_year: u32 = if step == Step::Quarter {
            QUARTERS_A_YEAR
        } else {
            12
        };
        let rates: Vec<Option<f64>> = members
            .iter()
            .map(|member| member.rate(periods, per_year))
            .collect();
        let shown_rates: Vec<f64> = rates.iter().flatten().copied().collect();
        #[expect(clippy::cast_precision_loss, reason = "a handful of partnerships")]
        let group_mean = (!shown_rates.is_empty()).then(|| {
            (shown_rates.iter().sum::<f64>() / shown_rates.len() as f64 * 10.0).round() / 10.0
        });
        let ranked = ranks(&rates);
        let approximate = members
            .iter()
            .any(|member| member.population.as_ref().is_some_and(|p| p.approximate));
        let views: Vec<MemberView> = members
            .iter()
            .enumerate()
            .map(|(i, member)| {
                view(
                    member,
                    &window,
                    &labels,
                    comparators,
                    per_year,
                    Standing {
                        rate: rates[i],
                        rank: ranked[i],
                        group_mean,
                    },
                )
            })
            .collect();
        let view = ComparisonView {
            partnership: partnership.code.to_string(),
            group: if comparators { Group::Comparators } else { Group::Neighbours },
            by: if step == Step::Quarter { By::Quarter } else { By::Month },
            from: window.first(),
            to: window.last,
            periods: labels,
            window: WindowView {
                periods,
                months: periods * if step == Step::Quarter { 3 } else { 1 },
            },
            left_out: window.left_out.map(|start| LeftOut {
                period: gate::label(step, start),
                reason: format!("this period has not ended, or ended fewer than {} days ago: comparisons cover closed periods, once agencies' late records are in", gate::SETTLE_DAYS),
            }),
            disclosure: Disclosure {
                threshold: THRESHOLD,
                note: format!(
                    "a neighbour's figures appear only under a sharing agreement in force that shares `comparison`, and come from its frozen summary of each closed period: counts from 1 to {THRESHOLD} are shown as c, larger counts are perturbed by up to 2 (the same records always give the same figure), totals add up only approximately, and rates are not shown where their numerator is suppressed"
                ),
            },
            rates_approximate: approximate,
            rates_note: if approximate {
                "APPROXIMATE: some child populations are approximations, not ONS estimates; rates built on them are approximate"
            } else {
                "rates per 10,000 children aged 0-17 per year: distinct children in each period over the population of the period's year, annualised (times 4 for a quarter, 12 for a month); a member's rate is the mean of its rates in the periods with data"
            },
            no_data_note: "a period to which no agency contributed records for a partnership has no data: its figures are null, not zero, and a partnership with no data in the window has no rate and no rank and is left out of the group mean",
            direction_note: format!(
                "direction of travel compares distinct children with the period before by the exact test of two Poisson rates (conditional binomial), two-sided at {DIRECTION_ALPHA}: `up` or `down` only when chance does not explain the change, otherwise `no_clear_change`; a neighbour's perturbed figures make its test approximate"
            ),
            group_mean_rate_per_10000: group_mean,
            members: views,
        };
        Ok(Comparison {
            view,
            shared_by: sharing,
        })
    }
}

/// The partnership beside its neighbours or comparators over whole closed periods.
#[derive(Debug, Serialize, ToSchema)]
pub struct ComparisonView {
    /// The partnership compared (GSS code).
    pub partnership: String,
    /// Which group it is compared with.
    pub group: Group,
    /// The length of a period.
    pub by: By,
    /// The first day of the first period.
    pub from: NaiveDate,
    /// The last day of the last period.
    pub to: NaiveDate,
    /// The periods' labels, such as `2026-Q1` or `2026-03`, oldest first.
    pub periods: Vec<String>,
    /// The window's length.
    pub window: WindowView,
    /// A period asked for but left out because it has not closed.
    pub left_out: Option<LeftOut>,
    /// How neighbours' figures are protected.
    pub disclosure: Disclosure,
    /// Whether any rate rests on an approximate population.
    pub rates_approximate: bool,
    /// What the rates are.
    pub rates_note: &'static str,
    /// What "no data" means.
    pub no_data_note: &'static str,
    /// How direction of travel is decided.
    pub direction_note: String,
    /// The mean of the members' rates (those with a rate), per 10,000 children a year.
    pub group_mean_rate_per_10000: Option<f64>,
    /// The partnership first, then the group.
    pub members: Vec<MemberView>,
}

/// Which partnerships a comparison sets beside the partnership.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Group {
    /// Those sharing a boundary with it.
    Neighbours,
    /// Its imported comparator group.
    Comparators,
}

/// The length of a comparison's periods.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum By {
    /// Calendar quarters.
    Quarter,
    /// Calendar months.
    Month,
}

/// The length of a comparison's window.
#[derive(Debug, Serialize, ToSchema)]
pub struct WindowView {
    /// Periods.
    pub periods: usize,
    /// Months.
    pub months: usize,
}

/// A period left out of a comparison.
#[derive(Debug, Serialize, ToSchema)]
pub struct LeftOut {
    /// Its label.
    pub period: String,
    /// Why.
    pub reason: String,
}

/// How a neighbour's figures are protected.
#[derive(Debug, Serialize, ToSchema)]
pub struct Disclosure {
    /// Counts from 1 to this are shown as `c`.
    pub threshold: u32,
    /// In words.
    pub note: String,
}

/// What a member is to the partnership compared.
#[derive(Debug, Clone, Copy, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MemberRole {
    /// The partnership itself.
    #[serde(rename = "self")]
    Own,
    /// A neighbour.
    Neighbour,
    /// A member of its comparator group.
    Comparator,
}

/// One member of a comparison. Figures are null where the member shares none or had no data.
#[derive(Debug, Serialize, ToSchema)]
pub struct MemberView {
    /// GSS code.
    pub code: String,
    /// Name.
    pub name: String,
    /// What it is to the partnership compared.
    pub role: MemberRole,
    /// Whether its figures are shown (the partnership's own, or a neighbour sharing
    /// `comparison`).
    pub figures_shared: bool,
    /// Whether no agency contributed records in the whole window; null where figures are not
    /// shared.
    pub no_data: Option<bool>,
    /// Whether its figures passed the publication gate (every member but the partnership).
    pub disclosure_controlled: bool,
    /// The child population of the window's last year.
    pub population: Option<PopulationView>,
    /// Records in the window.
    pub records: Option<Figure>,
    /// Distinct children in the window (the partnership's own only: a neighbour's distinct
    /// children over several periods are not published).
    pub children: Option<Figure>,
    /// Its rate over the window: the mean of its annualised rates in the periods with data.
    pub rate_per_10000: Option<f64>,
    /// Its rank by rate, 1 the highest.
    pub rank: Option<usize>,
    /// Its rate less the group mean.
    pub difference_from_group_mean: Option<f64>,
    /// Records in the window by agency kind.
    #[schema(schema_with = crate::figures::figures_by_name)]
    pub records_by_agency_kind: BTreeMap<&'static str, Option<Figure>>,
    /// Records in the window by risk indicator.
    #[schema(schema_with = crate::figures::figures_by_name)]
    pub records_by_indicator: BTreeMap<&'static str, Option<Figure>>,
    /// Each period's figures.
    pub periods: Vec<PeriodView>,
}

/// A member's figures in one period.
#[derive(Debug, Serialize, ToSchema)]
pub struct PeriodView {
    /// Its label.
    pub period: String,
    /// Its first day.
    pub start: NaiveDate,
    /// Whether no agency contributed records in it; null where figures are not shared.
    pub no_data: Option<bool>,
    /// Records.
    pub records: Option<Figure>,
    /// Distinct children.
    pub children: Option<Figure>,
    /// Distinct children per 10,000 aged 0 to 17, annualised.
    pub rate_per_10000: Option<f64>,
    /// The rate less the period before's.
    pub change_in_rate: Option<f64>,
    /// Direction of travel from the period before.
    #[schema(schema_with = direction_schema)]
    pub direction: Option<Direction>,
    /// Whether the neighbour's frozen summary was revised after late records.
    pub revised: bool,
}

/// The schema of a period's direction of travel: one of [`Direction`]'s names, or null.
pub(crate) fn direction_schema() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::{ObjectBuilder, SchemaType, Type};
    let names = Direction::ALL
        .iter()
        .map(|direction| serde_json::to_value(direction).unwrap_or_default())
        .chain([serde_json::Value::Null]);
    ObjectBuilder::new()
        .schema_type(SchemaType::from_iter([Type::String, Type::Null]))
        .enum_values(Some(names))
        .description(Some(
            "Direction of travel from the period before: `up` or `down` when chance does not explain the change, otherwise `no_clear_change`; null without both periods' rates",
        ))
        .build()
}

/// A member's place in the group.
struct Standing {
    /// Its rate over the window.
    rate: Option<f64>,
    /// Its rank by rate.
    rank: Option<usize>,
    /// The group's mean rate.
    group_mean: Option<f64>,
}

/// One member as the answer shows it.
fn view(
    member: &Member,
    window: &ClosedWindow,
    labels: &[String],
    comparators: bool,
    per_year: u32,
    standing: Standing,
) -> MemberView {
    let Standing {
        rate,
        rank,
        group_mean,
    } = standing;
    let periods = labels.len();
    let totals = member.totals();
    let period_records = member.period_records(periods);
    let period_children = member.period_children(periods);
    let period_rates = member.period_rates(periods, per_year);
    let revised: Vec<bool> = match &member.figures {
        Figures::Gated(summaries) => summaries.iter().map(|s| s.revised).collect(),
        _ => vec![false; periods],
    };
    let shared = !matches!(member.figures, Figures::NotShared);
    let period_views: Vec<PeriodView> = labels
        .iter()
        .enumerate()
        .map(|(p, label)| {
            let before = p.checked_sub(1);
            let change_in_rate = before.and_then(|before| {
                period_rates[p]
                    .zip(period_rates[before])
                    .map(|(now, then)| ((now - then) * 10.0).round() / 10.0)
            });
            let direction = before.and_then(|before| {
                let (now, then) = (period_children[p].1?, period_children[before].1?);
                direction(
                    then,
                    member.period_populations[before]?,
                    now,
                    member.period_populations[p]?,
                )
            });
            PeriodView {
                period: label.clone(),
                start: window.starts[p],
                no_data: shared.then_some(!member.contributed[p]),
                records: period_records[p],
                children: period_children[p].0,
                rate_per_10000: period_rates[p],
                change_in_rate,
                direction,
                revised: revised[p],
            }
        })
        .collect();
    let own = matches!(member.figures, Figures::Own(_));
    MemberView {
        code: member.code.clone(),
        name: member.name.clone(),
        role: if own {
            MemberRole::Own
        } else if comparators {
            MemberRole::Comparator
        } else {
            MemberRole::Neighbour
        },
        figures_shared: shared,
        no_data: shared.then_some(!member.has_data()),
        disclosure_controlled: !own,
        population: member.population.as_ref().map(PopulationView::from),
        records: totals.records,
        children: totals.children,
        rate_per_10000: rate,
        rank,
        difference_from_group_mean: rate
            .zip(group_mean)
            .map(|(rate, mean)| ((rate - mean) * 10.0).round() / 10.0),
        records_by_agency_kind: AgencyKind::ALL
            .iter()
            .map(|kind| kind.as_str())
            .zip(totals.by_agency_kind)
            .collect(),
        records_by_indicator: Indicator::ALL
            .iter()
            .map(|indicator| indicator.as_str())
            .zip(totals.by_indicator)
            .collect(),
        periods: period_views,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_member_rate_is_the_annualised_mean_over_the_periods_with_data() {
        let member = |children: Vec<u32>| Member {
            code: "E06000009".to_owned(),
            name: "Blackpool".to_owned(),
            figures: Figures::Own(atlas_analytics::comparison::Counts {
                records: vec![vec![0; AgencyKind::ALL.len()]; children.len()],
                children: children.clone(),
                children_overall: 0,
                indicators: vec![0; Indicator::ALL.len()],
            }),
            population: None,
            period_populations: vec![Some(20_000); children.len()],
            contributed: vec![true; children.len()],
        };
        // 10 and 30 children a quarter in 20,000: 20 and 60 a year per 10,000, mean 40.
        assert_eq!(member(vec![10, 30]).rate(2, 4), Some(40.0));
        let mut unknown = member(vec![10, 30]);
        unknown.period_populations[1] = None;
        assert_eq!(unknown.rate(2, 4), None);
        // A period no agency contributed to is no data: left out, not a zero.
        let mut partial = member(vec![10, 0]);
        partial.contributed[1] = false;
        assert_eq!(partial.rate(2, 4), Some(20.0));
        assert!(partial.period_records(2)[1].is_none());
        let mut none = member(vec![0, 0]);
        none.contributed = vec![false, false];
        assert_eq!(none.rate(2, 4), None);
        assert!(!none.has_data());
    }
}
