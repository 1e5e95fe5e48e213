//! The partnership beside its neighbours: records, distinct children and rates per 10,000
//! children aged 0 to 17 per closed period, by agency kind and indicator, with rank, difference
//! from the group mean and direction of travel. The partnership's own figures are exact; a
//! neighbour appears with figures only under an agreement in force that shares `comparison`,
//! and then only with its frozen summaries from the publication gate (docs/privacy.md,
//! "Comparisons").

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_access::Scope;
use atlas_analytics::comparison::{
    DIRECTION_ALPHA, Direction, count, direction, ranks, rate_per_10000,
};
use atlas_analytics::emerging::Step;
use atlas_analytics::gate::{self, ClosedWindow, PeriodSummary, Shown, THRESHOLD, closed_window};
use atlas_domain::{AgencyKind, GssCode, Indicator};
use atlas_store::populations::{self, PartnershipPopulation};
use atlas_store::{Database, agreements, batches, partnerships};
use chrono::{Datelike as _, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::ApiError;
use crate::analysis::RecordCache;
use crate::auth::Authorized;
use crate::guards::ReadAnalysis;
use crate::products::period_summaries;
use crate::query_audit::QueryAudit;
use crate::routes::analysis::Params;

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

impl Member {
    /// Whether any period has data.
    fn has_data(&self) -> bool {
        self.contributed.iter().any(|contributed| *contributed)
    }

    /// Records of each period, as shown; null where there are no data.
    fn period_records(&self, periods: usize) -> Vec<Value> {
        let shown: Vec<Value> = match &self.figures {
            Figures::Own(counts) => counts
                .records
                .iter()
                .map(|row| json!(row.iter().sum::<u32>()))
                .collect(),
            Figures::Gated(summaries) => summaries.iter().map(|s| json!(s.records)).collect(),
            Figures::NotShared => vec![Value::Null; periods],
        };
        self.only_with_data(shown, Value::Null)
    }

    /// Distinct children of each period as shown, and the number a rate may use; null where
    /// there are no data.
    fn period_children(&self, periods: usize) -> Vec<(Value, Option<u32>)> {
        let shown: Vec<(Value, Option<u32>)> = match &self.figures {
            Figures::Own(counts) => counts
                .children
                .iter()
                .map(|children| (json!(children), Some(*children)))
                .collect(),
            Figures::Gated(summaries) => summaries
                .iter()
                .map(|s| (json!(s.children), s.children.number()))
                .collect(),
            Figures::NotShared => vec![(Value::Null, None); periods],
        };
        self.only_with_data(shown, (Value::Null, None))
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
        #[allow(clippy::cast_precision_loss, reason = "at most 60 periods")]
        rates
            .filter(|rates| !rates.is_empty())
            .map(|rates| (rates.iter().sum::<f64>() / rates.len() as f64 * 10.0).round() / 10.0)
    }
}

/// The closed periods a comparison covers, from the query.
fn window(params: &mut Params, step: Step) -> Result<ClosedWindow, ApiError> {
    let to: Option<NaiveDate> = params.take("to")?;
    let from: Option<NaiveDate> = params.take("from")?;
    let default_periods = if step == Step::Quarter { 4 } else { 12 };
    closed_window(
        step,
        from,
        to,
        Utc::now().date_naive(),
        default_periods,
        MAX_PERIODS,
    )
    .map_err(|err| ApiError::BadRequest(format!("{err}; compare by quarter or shorten the range")))
}

/// The partnership beside its neighbours over whole closed periods.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        ("from" = Option<NaiveDate>, Query, description = "A day of the first period; the comparison starts at that period's first day (default: four quarters or twelve months before `to`'s)"),
        ("to" = Option<NaiveDate>, Query, description = "A day of the last period; the comparison ends on that period's last day, and a period not yet ended is left out (default: the last closed period)"),
        ("by" = Option<String>, Query, description = "quarter (default) or month"),
        ("group" = Option<String>, Query, description = "neighbours (default: the neighbour graph) or comparators (the imported comparator group)")
    ),
    responses(
        (status = 200, description = "The comparison", content_type = "application/json"),
        (status = 400, body = crate::error::ErrorBody),
        (status = 403, body = crate::error::ErrorBody),
        (status = 404, body = crate::error::ErrorBody)
    )
)]
#[get("/api/v1/partnerships/{code}/comparison")]
pub async fn comparison(
    authorized: Authorized<ReadAnalysis>,
    request: HttpRequest,
    database: web::Data<Database>,
    cache: web::Data<RecordCache>,
    query_audit: web::Data<QueryAudit>,
) -> Result<HttpResponse, ApiError> {
    let mut params = Params::parse(&request)?;
    let step = match params.take::<String>("by")?.as_deref() {
        None | Some("quarter") => Step::Quarter,
        Some("month") => Step::Month,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`by`: `{other}` is not quarter or month"
            )));
        }
    };
    let comparators = match params.take::<String>("group")?.as_deref() {
        None | Some("neighbours") => false,
        Some("comparators") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`group`: `{other}` is not neighbours or comparators"
            )));
        }
    };
    let window = window(&mut params, step)?;
    params.finish(&["from", "to", "by", "group"])?;
    let periods = window.starts.len();
    let code = authorized.target().clone();
    let today = Utc::now().date_naive();
    let (partnership, codes, sharing, mut populations, mut names, mut contributed) = {
        let mut conn = database.connection().await?;
        let partnership = partnerships::find(&mut conn, &code)
            .await?
            .ok_or_else(|| ApiError::NotFound(format!("no partnership has the code {code}")))?;
        let mut codes = vec![partnership.code.clone()];
        if comparators {
            let group = partnerships::comparators(&mut conn, &code).await?;
            if group.is_empty() {
                return Err(ApiError::NotFound(format!(
                    "{code} has no comparator group: import one with `atlas reference import --comparators FILE`"
                )));
            }
            codes.extend(group);
        } else {
            codes.extend(partnership.neighbours.iter().cloned());
        }
        let sharing: Vec<GssCode> = agreements::sharing_with(&mut conn, &code, today)
            .await?
            .into_iter()
            .filter(|(_, scopes)| scopes.contains(Scope::Comparison.as_str()))
            .filter(|(owner, _)| codes.contains(owner))
            .map(|(owner, _)| GssCode::parse(&owner))
            .collect::<Result<_, _>>()
            .map_err(|err| ApiError::Internal(format!("a stored code: {err}")))?;
        let populations = populations::of_partnerships(&mut conn, &codes).await?;
        let names = partnerships::names(&mut conn, &codes).await?;
        // Whether a partnership had data is asked only of those whose figures are shown: a
        // member without an agreement says nothing, not even that.
        let shown: Vec<String> = std::iter::once(partnership.code.clone())
            .chain(sharing.iter().map(ToString::to_string))
            .collect();
        let contributed =
            batches::contributed_periods(&mut conn, &shown, &window.starts, window.last).await?;
        (partnership, codes, sharing, populations, names, contributed)
    };
    if !sharing.is_empty() {
        query_audit
            .check(&database, &authorized, "comparison")
            .await?;
    }
    authorized.used_records_of(std::iter::once(&code).chain(&sharing));
    let mut summaries = period_summaries(&database, &cache, &sharing, &window).await?;
    let labels: Vec<String> = window
        .starts
        .iter()
        .map(|start| gate::label(step, *start))
        .collect();
    let mut members = Vec::with_capacity(codes.len());
    for member_code in &codes {
        let figures = if *member_code == partnership.code {
            let records = cache
                .records(&database, &code, authorized.record_scope())
                .await?
                .unwrap_or_default();
            let (starts, last) = (window.starts.clone(), window.last);
            Figures::Own(
                web::block(move || count(&records.records, &starts, last))
                    .await
                    .map_err(|err| ApiError::Internal(format!("comparison: {err}")))?,
            )
        } else if sharing.iter().any(|owner| owner.as_str() == member_code) {
            Figures::Gated(
                labels
                    .iter()
                    .map(|label| {
                        summaries
                            .remove(&(member_code.clone(), label.clone()))
                            .ok_or_else(|| {
                                ApiError::Internal(format!("no summary of {member_code} {label}"))
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

    let per_year: u32 = if step == Step::Quarter { 4 } else { 12 };
    let rates: Vec<Option<f64>> = members
        .iter()
        .map(|member| member.rate(periods, per_year))
        .collect();
    let shown_rates: Vec<f64> = rates.iter().flatten().copied().collect();
    #[allow(clippy::cast_precision_loss, reason = "a handful of partnerships")]
    let group_mean = (!shown_rates.is_empty()).then(|| {
        (shown_rates.iter().sum::<f64>() / shown_rates.len() as f64 * 10.0).round() / 10.0
    });
    let ranked = ranks(&rates);
    let approximate = members
        .iter()
        .any(|member| member.population.as_ref().is_some_and(|p| p.approximate));
    let views: Vec<Value> = members
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
    authorized.returned(views.len());
    Ok(HttpResponse::Ok().json(json!({
        "partnership": partnership.code,
        "group": if comparators { "comparators" } else { "neighbours" },
        "by": if step == Step::Quarter { "quarter" } else { "month" },
        "from": window.first(),
        "to": window.last,
        "periods": labels,
        "window": {
            "periods": periods,
            "months": periods * if step == Step::Quarter { 3 } else { 1 },
        },
        "left_out": window.left_out.map(|start| json!({
            "period": gate::label(step, start),
            "reason": format!("this period has not ended, or ended fewer than {} days ago: comparisons cover closed periods, once agencies' late records are in", gate::SETTLE_DAYS),
        })),
        "disclosure": {
            "threshold": THRESHOLD,
            "note": format!(
                "a neighbour's figures appear only under a sharing agreement in force that shares `comparison`, and come from its frozen summary of each closed period: counts from 1 to {THRESHOLD} are shown as c, larger counts are perturbed by up to 2 (the same records always give the same figure), totals add up only approximately, and rates are not shown where their numerator is suppressed"
            ),
        },
        "rates_approximate": approximate,
        "rates_note": if approximate {
            "APPROXIMATE: some child populations are approximations, not ONS estimates; rates built on them are approximate"
        } else {
            "rates per 10,000 children aged 0-17 per year: distinct children in each period over the population of the period's year, annualised (times 4 for a quarter, 12 for a month); a member's rate is the mean of its rates in the periods with data"
        },
        "no_data_note": "a period to which no agency contributed records for a partnership has no data: its figures are null, not zero, and a partnership with no data in the window has no rate and no rank and is left out of the group mean",
        "direction_note": format!(
            "direction of travel compares distinct children with the period before by the exact test of two Poisson rates (conditional binomial), two-sided at {DIRECTION_ALPHA}: `up` or `down` only when chance does not explain the change, otherwise `no_clear_change`; a neighbour's perturbed figures make its test approximate"
        ),
        "group_mean_rate_per_10000": group_mean,
        "members": views,
    })))
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
) -> Value {
    let Standing {
        rate,
        rank,
        group_mean,
    } = standing;
    let periods = labels.len();
    let kinds: Vec<String> = AgencyKind::ALL.iter().map(ToString::to_string).collect();
    let indicators: Vec<String> = Indicator::ALL.iter().map(ToString::to_string).collect();
    let (records, by_kind, by_indicator, children): (Value, Vec<Value>, Vec<Value>, Value) =
        match &member.figures {
            Figures::Own(counts) => (
                json!(counts.records.iter().flatten().sum::<u32>()),
                (0..kinds.len())
                    .map(|kind| json!(counts.records.iter().map(|row| row[kind]).sum::<u32>()))
                    .collect(),
                counts.indicators.iter().map(|value| json!(value)).collect(),
                json!(counts.children_overall),
            ),
            Figures::Gated(summaries) => (
                json!(Shown::sum(summaries.iter().map(|s| s.records))),
                (0..kinds.len())
                    .map(|kind| {
                        json!(Shown::sum(
                            summaries.iter().map(|s| s.records_by_agency_kind[kind]),
                        ))
                    })
                    .collect(),
                (0..indicators.len())
                    .map(|indicator| {
                        json!(Shown::sum(
                            summaries.iter().map(|s| s.records_by_indicator[indicator]),
                        ))
                    })
                    .collect(),
                // Distinct children over several periods are not published: windows that
                // differ by a period would difference to that period's new children.
                Value::Null,
            ),
            Figures::NotShared => (
                Value::Null,
                vec![Value::Null; kinds.len()],
                vec![Value::Null; indicators.len()],
                Value::Null,
            ),
        };
    let period_records = member.period_records(periods);
    let period_children = member.period_children(periods);
    let period_rates = member.period_rates(periods, per_year);
    let revised: Vec<bool> = match &member.figures {
        Figures::Gated(summaries) => summaries.iter().map(|s| s.revised).collect(),
        _ => vec![false; periods],
    };
    let shared = !matches!(member.figures, Figures::NotShared);
    let period_views: Vec<Value> = labels
        .iter()
        .enumerate()
        .map(|(p, label)| {
            let before = p.checked_sub(1);
            let change = before.and_then(|before| {
                period_rates[p]
                    .zip(period_rates[before])
                    .map(|(now, then)| ((now - then) * 10.0).round() / 10.0)
            });
            let travel: Option<Direction> = before.and_then(|before| {
                let (now, then) = (period_children[p].1?, period_children[before].1?);
                direction(
                    then,
                    member.period_populations[before]?,
                    now,
                    member.period_populations[p]?,
                )
            });
            json!({
                "period": label,
                "start": window.starts[p],
                "no_data": shared.then_some(!member.contributed[p]),
                "records": period_records[p],
                "children": period_children[p].0,
                "rate_per_10000": period_rates[p],
                "change_in_rate": change,
                "direction": travel,
                "revised": revised[p],
            })
        })
        .collect();
    let own = matches!(member.figures, Figures::Own(_));
    json!({
        "code": member.code,
        "name": member.name,
        "role": if own { "self" } else if comparators { "comparator" } else { "neighbour" },
        "figures_shared": shared,
        "no_data": shared.then_some(!member.has_data()),
        "disclosure_controlled": !own,
        "population": member.population.as_ref().map(|p| json!({
            "year": p.year,
            "children_0_17": p.population_0_17,
            "approximate": p.approximate,
            "source": p.source,
        })),
        "records": records,
        "children": children,
        "rate_per_10000": rate,
        "rank": rank,
        "difference_from_group_mean": rate.zip(group_mean).map(|(rate, mean)| ((rate - mean) * 10.0).round() / 10.0),
        "records_by_agency_kind": kinds.into_iter().zip(by_kind).collect::<serde_json::Map<_, _>>(),
        "records_by_indicator": indicators.into_iter().zip(by_indicator).collect::<serde_json::Map<_, _>>(),
        "periods": period_views,
    })
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
        assert_eq!(partial.period_records(2)[1], Value::Null);
        let mut none = member(vec![0, 0]);
        none.contributed = vec![false, false];
        assert_eq!(none.rate(2, 4), None);
        assert!(!none.has_data());
    }
}
