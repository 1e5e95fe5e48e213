//! The partnership beside its neighbours: records, distinct children and rates per 10,000
//! children aged 0 to 17 per period, by agency kind and indicator, with rank, difference from
//! the group mean and direction of travel. The partnership's own figures are exact; its
//! neighbours' are disclosure-controlled (docs/privacy.md, "Comparisons").

use actix_web::{HttpRequest, HttpResponse, get, web};
use atlas_analytics::comparison::{Counts, count, ranks, rate_per_10000};
use atlas_analytics::disclosure::{Policy, Published, protect, protect_count};
use atlas_analytics::emerging::Step;
use atlas_domain::{AgencyKind, GssCode, Indicator};
use atlas_store::populations::{self, PartnershipPopulation};
use atlas_store::{Database, partnerships};
use chrono::{Datelike as _, Months, NaiveDate, Utc};
use serde_json::{Value, json};

use crate::ApiError;
use crate::analysis::RecordCache;
use crate::auth::Authorized;
use crate::guards::ReadAnalysis;
use crate::routes::analysis::Params;
use crate::routes::releases::published_value;

/// The most periods one comparison may cover.
const MAX_PERIODS: usize = 60;

/// A period's label: `2026-Q1`, `2026-01`.
fn label(step: Step, start: NaiveDate) -> String {
    match step {
        Step::Quarter => format!("{}-Q{}", start.year(), start.month0() / 3 + 1),
        _ => start.format("%Y-%m").to_string(),
    }
}

/// One member of the group, its figures as shown.
struct Member {
    code: String,
    name: String,
    controlled: bool,
    counts: Counts,
    population: Option<PartnershipPopulation>,
    period_populations: Vec<Option<i64>>,
}

impl Member {
    /// Distinct children over the window as shown, and the number a rate may use.
    fn children(&self, policy: Policy) -> (Value, Option<u32>) {
        self.figure(self.counts.children_overall, policy)
    }

    fn figure(&self, value: u32, policy: Policy) -> (Value, Option<u32>) {
        if self.controlled {
            match protect_count(value, policy) {
                Published::Value(value) => (json!(value), Some(value)),
                Published::Suppressed => (json!("c"), None),
            }
        } else {
            (json!(value), Some(value))
        }
    }
}

/// The partnership beside its neighbours over whole periods from `from` to `to`.
#[utoipa::path(
    tag = "analysis",
    security(("bearer" = [])),
    params(
        ("code" = String, Path, description = "GSS code", example = "E10000017"),
        ("from" = Option<NaiveDate>, Query, description = "First day; moved back to the start of its period (default: a year before `to`)"),
        ("to" = Option<NaiveDate>, Query, description = "Last day (default: today)"),
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
    let to: NaiveDate = params
        .take("to")?
        .unwrap_or_else(|| Utc::now().date_naive());
    let from: NaiveDate = params.take("from")?.unwrap_or_else(|| {
        to.checked_sub_months(Months::new(12))
            .unwrap_or(to)
            .succ_opt()
            .unwrap_or(to)
    });
    let comparators = match params.take::<String>("group")?.as_deref() {
        None | Some("neighbours") => false,
        Some("comparators") => true,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`group`: `{other}` is not neighbours or comparators"
            )));
        }
    };
    params.finish(&["from", "to", "by", "group"])?;
    if from > to {
        return Err(ApiError::BadRequest(format!(
            "`from` ({from}) is after `to` ({to})"
        )));
    }
    let starts = step.starts(from, to);
    if starts.len() > MAX_PERIODS {
        return Err(ApiError::BadRequest(format!(
            "{} periods is more than one comparison shows (at most {MAX_PERIODS}); shorten the range or compare by quarter",
            starts.len()
        )));
    }
    let code = authorized.target().clone();
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
    authorized.used_records_of(&codes);
    let mut populations = populations::of_partnerships(&mut conn, &codes).await?;
    let mut names = partnerships::names(&mut conn, &codes).await?;
    let mut members = Vec::with_capacity(codes.len());
    for member_code in &codes {
        let gss = GssCode::parse(member_code).map_err(|err| ApiError::Internal(err.to_string()))?;
        let name = names
            .remove(member_code)
            .unwrap_or_else(|| member_code.clone());
        let records = cache
            .records(&database, &gss, authorized.record_scope())
            .await?;
        let (periods, end) = (starts.clone(), to);
        let counts = web::block(move || match records {
            Some(records) => count(&records.records, &periods, end),
            None => count(&[], &periods, end),
        })
        .await
        .map_err(|err| ApiError::Internal(format!("comparison: {err}")))?;
        let member_populations = populations.remove(member_code).unwrap_or_default();
        members.push(Member {
            controlled: *member_code != partnership.code,
            code: member_code.clone(),
            name,
            population: populations::for_year(&member_populations, to.year()).cloned(),
            period_populations: starts
                .iter()
                .map(|start| {
                    populations::for_year(&member_populations, start.year())
                        .map(|p| p.population_0_17)
                })
                .collect(),
            counts,
        });
    }
    drop(conn);

    let policy = Policy::default();
    let rates: Vec<Option<f64>> = members
        .iter()
        .map(|member| {
            let (_, children) = member.children(policy);
            children
                .zip(member.population.as_ref())
                .and_then(|(children, population)| {
                    rate_per_10000(children, population.population_0_17)
                })
        })
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
    let kinds: Vec<String> = AgencyKind::ALL.iter().map(ToString::to_string).collect();
    let indicators: Vec<String> = Indicator::ALL.iter().map(ToString::to_string).collect();
    let mut views = Vec::with_capacity(members.len());
    for (i, member) in members.iter().enumerate() {
        // Records: the periods × agency kinds table with its totals, protected as a whole for
        // neighbours; exact for the partnership itself.
        let table = protect(&member.counts.records, policy);
        let exact_row_total = |row: &Vec<u32>| row.iter().sum::<u32>();
        let period_records: Vec<Value> = if member.controlled {
            table
                .row_totals
                .iter()
                .copied()
                .map(published_value)
                .collect()
        } else {
            member
                .counts
                .records
                .iter()
                .map(|row| json!(exact_row_total(row)))
                .collect()
        };
        let by_kind: Vec<Value> = if member.controlled {
            table
                .column_totals
                .iter()
                .copied()
                .map(published_value)
                .collect()
        } else {
            (0..kinds.len())
                .map(|kind| {
                    json!(
                        member
                            .counts
                            .records
                            .iter()
                            .map(|row| row[kind])
                            .sum::<u32>()
                    )
                })
                .collect()
        };
        let records_total = if member.controlled {
            published_value(table.grand_total)
        } else {
            json!(
                member
                    .counts
                    .records
                    .iter()
                    .map(exact_row_total)
                    .sum::<u32>()
            )
        };
        let mut previous_rate: Option<f64> = None;
        let periods: Vec<Value> = starts
            .iter()
            .enumerate()
            .map(|(p, start)| {
                let (children, usable) = member.figure(member.counts.children[p], policy);
                let rate = usable
                    .zip(member.period_populations[p])
                    .and_then(|(children, population)| rate_per_10000(children, population));
                let (change, direction) = match (rate, previous_rate) {
                    (Some(now), Some(before)) => {
                        let change = ((now - before) * 10.0).round() / 10.0;
                        let direction = if change > 0.0 {
                            "up"
                        } else if change < 0.0 {
                            "down"
                        } else {
                            "no change"
                        };
                        (Some(change), Some(direction))
                    }
                    _ => (None, None),
                };
                previous_rate = rate;
                json!({
                    "period": label(step, *start),
                    "start": start,
                    "records": period_records[p],
                    "children": children,
                    "rate_per_10000": rate,
                    "change_in_rate": change,
                    "direction": direction,
                })
            })
            .collect();
        let (children, _) = member.children(policy);
        views.push(json!({
            "code": member.code,
            "name": member.name,
            "role": if !member.controlled { "self" } else if comparators { "comparator" } else { "neighbour" },
            "disclosure_controlled": member.controlled,
            "population": member.population.as_ref().map(|p| json!({
                "year": p.year,
                "children_0_17": p.population_0_17,
                "approximate": p.approximate,
                "source": p.source,
            })),
            "records": records_total,
            "children": children,
            "rate_per_10000": rates[i],
            "rank": ranked[i],
            "difference_from_group_mean": rates[i].zip(group_mean).map(|(rate, mean)| ((rate - mean) * 10.0).round() / 10.0),
            "records_by_agency_kind": kinds.iter().zip(by_kind).map(|(kind, value)| (kind.clone(), value)).collect::<serde_json::Map<_, _>>(),
            "records_by_indicator": indicators.iter().zip(&member.counts.indicators).map(|(indicator, value)| (indicator.clone(), member.figure(*value, policy).0)).collect::<serde_json::Map<_, _>>(),
            "periods": periods,
        }));
    }
    authorized.returned(views.len());
    Ok(HttpResponse::Ok().json(json!({
        "partnership": partnership.code,
        "group": if comparators { "comparators" } else { "neighbours" },
        "by": match step { Step::Quarter => "quarter", _ => "month" },
        "from": starts.first(),
        "to": to,
        "disclosure": {
            "threshold": policy.threshold,
            "rounding": policy.rounding,
            "note": format!(
                "neighbours' figures are disclosure-controlled: counts from 1 to {} are shown as c, record totals are rounded to {}, and rates are not shown where their numerator is suppressed",
                policy.threshold, policy.rounding
            ),
        },
        "rates_approximate": approximate,
        "rates_note": if approximate {
            "APPROXIMATE: some child populations are approximations, not ONS estimates; rates built on them are approximate"
        } else {
            "rates per 10,000 children aged 0-17 (distinct children over the population of the period's year)"
        },
        "group_mean_rate_per_10000": group_mean,
        "members": views,
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_are_labelled_as_people_write_them() {
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        assert_eq!(label(Step::Quarter, day("2026-04-01")), "2026-Q2");
        assert_eq!(label(Step::Month, day("2026-04-01")), "2026-04");
    }
}
