//! The national export: every partnership's disclosure-controlled figures for one calendar
//! quarter, in a stable long format that combines across England (docs/privacy.md, "National
//! export"). Served by `GET /api/v1/exports/national` and written by `atlas export national`.

use atlas_analytics::comparison::{QUARTERS_A_YEAR, rate_per_10000};
use atlas_domain::{AgencyKind, GssCode};
use atlas_store::{Database, StoreError, batches, partnerships, populations};
use chrono::{Datelike as _, Months, NaiveDate};

use crate::RecordCache;
use crate::products::{closed_quarter, period_summaries};
use serde::Serialize;
use utoipa::ToSchema;

/// The schema's name and version: a consumer checks it before reading the rows.
pub const SCHEMA: &str = "atlas-national-export/2";

/// The columns of the CSV, in order.
pub const COLUMNS: [&str; 8] = [
    "schema",
    "gss_code",
    "partnership",
    "period",
    "measure",
    "breakdown",
    "value",
    "note",
];

/// One figure of one partnership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct ExportRow {
    /// GSS code of the partnership (its upper-tier local authority).
    pub gss_code: String,
    /// Its name.
    pub partnership: String,
    /// The calendar quarter, `YYYY-Qn`.
    pub period: String,
    /// `records`, `children`, `rate_per_10000` or `population_0_17`.
    pub measure: &'static str,
    /// `all`, or an agency kind for `records`.
    pub breakdown: String,
    /// A whole number (a rate to one decimal place); `c` where suppressed, `x` where not
    /// available.
    pub value: String,
    /// `approximate` where the population (and so the rate) is an approximation; `revised`
    /// where the figure comes from a revision of the quarter's frozen summary
    /// (docs/privacy.md, "Frozen products"); both separated by `; `, or empty; [`NO_DATA`] where
    /// no agency contributed records for the quarter (its figures are then `x`, never zero).
    pub note: &'static str,
}

/// The first and last day of a calendar quarter written `YYYY-Qn` (years 2000 to 2100), or
/// `None`. Releases and the national export cover whole quarters only, so that no two of them
/// overlap.
#[must_use]
pub fn quarter(period: &str) -> Option<(NaiveDate, NaiveDate)> {
    let (year, number) = period.split_once("-Q")?;
    let year: i32 = year
        .parse()
        .ok()
        .filter(|year| (2000..=2100).contains(year))?;
    let number: u32 = number
        .parse()
        .ok()
        .filter(|number| (1..=4).contains(number))?;
    let first = NaiveDate::from_ymd_opt(year, 3 * number - 2, 1)?;
    let last = first.checked_add_months(Months::new(3))?.pred_opt()?;
    Some((first, last))
}

/// The note on a partnership's figures for a quarter to which no agency contributed records.
pub const NO_DATA: &str = "no data: no agency contributed records for this quarter";

/// Every partnership's figures for `period` (a quarter that [`quarter`] accepts and that has
/// ended), sorted by GSS code, from the partnerships' frozen summaries (docs/privacy.md,
/// "Frozen products"): records in all and by agency kind, distinct children, the child
/// population and the rate per 10,000 children (shown only where the children are). The same
/// quarter always gives the same figures, whatever was uploaded since.
///
/// # Errors
/// [`StoreError::Invalid`] for a period that is not a closed quarter; [`StoreError`] when a
/// query fails.
pub async fn national(
    database: &Database,
    cache: &RecordCache,
    period: &str,
    today: NaiveDate,
) -> Result<Vec<ExportRow>, StoreError> {
    let window = closed_quarter(period, today).map_err(StoreError::Invalid)?;
    let from = window.first();
    let (all, mut populations, contributed) = {
        let mut conn = database.connection().await?;
        let all = partnerships::list(&mut conn).await?;
        let codes: Vec<String> = all.iter().map(|p| p.code.to_string()).collect();
        let populations = populations::of_partnerships(&mut conn, &codes).await?;
        let contributed =
            batches::contributed_periods(&mut conn, &codes, &window.starts, window.last, None)
                .await?;
        (all, populations, contributed)
    };
    let codes: Vec<GssCode> = all.iter().map(|p| p.code.clone()).collect();
    let mut summaries = period_summaries(database, cache, &codes, &window).await?;
    let mut rows = Vec::new();
    for partnership in all {
        let summary = summaries
            .remove(&(partnership.code.to_string(), period.to_owned()))
            .ok_or_else(|| StoreError::Invalid(format!("no summary of {}", partnership.code)))?;
        let row = |measure, breakdown: &str, value: String, note| ExportRow {
            gss_code: partnership.code.to_string(),
            partnership: partnership.name.clone(),
            period: period.to_owned(),
            measure,
            breakdown: breakdown.to_owned(),
            value,
            note,
        };
        let known = populations
            .remove(partnership.code.as_str())
            .unwrap_or_default();
        let population = populations::for_year(&known, from.year()).cloned();
        let approximate = population.as_ref().is_some_and(|p| p.approximate);
        let population_row = row(
            "population_0_17",
            "all",
            population
                .as_ref()
                .map_or_else(|| "x".to_owned(), |p| p.population_0_17.to_string()),
            if approximate { "approximate" } else { "" },
        );
        if !contributed
            .get(partnership.code.as_str())
            .is_some_and(|periods| periods.iter().any(|contributed| *contributed))
        {
            // No agency contributed records for the quarter: not available, never zero.
            let no_data =
                |measure, breakdown: &str| row(measure, breakdown, "x".to_owned(), NO_DATA);
            rows.push(no_data("records", "all"));
            for kind in AgencyKind::ALL {
                rows.push(no_data("records", &kind.to_string()));
            }
            rows.push(no_data("children", "all"));
            rows.push(population_row);
            rows.push(no_data("rate_per_10000", "all"));
            continue;
        }
        let revised = if summary.revised { "revised" } else { "" };
        rows.push(row("records", "all", summary.records.to_string(), revised));
        for (kind, value) in AgencyKind::ALL.iter().zip(&summary.records_by_agency_kind) {
            rows.push(row(
                "records",
                &kind.to_string(),
                value.to_string(),
                revised,
            ));
        }
        rows.push(row(
            "children",
            "all",
            summary.children.to_string(),
            revised,
        ));
        let note = match (approximate, summary.revised) {
            (true, true) => "approximate; revised",
            (true, false) => "approximate",
            (false, true) => "revised",
            (false, false) => "",
        };
        rows.push(population_row);
        let rate = match (summary.children.number(), &population) {
            (None, _) => "c".to_owned(),
            (Some(children), Some(population)) => rate_per_10000(
                children.saturating_mul(QUARTERS_A_YEAR),
                population.population_0_17,
            )
            .map_or_else(|| "x".to_owned(), |rate| format!("{rate:.1}")),
            (Some(_), None) => "x".to_owned(),
        };
        rows.push(row("rate_per_10000", "all", rate, note));
    }
    Ok(rows)
}

/// The rows as CSV with [`COLUMNS`].
///
/// # Errors
/// When writing fails (it does not, into memory).
pub fn to_csv(rows: &[ExportRow]) -> Result<Vec<u8>, csv::Error> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    writer.write_record(COLUMNS)?;
    for row in rows {
        writer.write_record([
            SCHEMA,
            &row.gss_code,
            &row.partnership,
            &row.period,
            row.measure,
            &row.breakdown,
            &row.value,
            row.note,
        ])?;
    }
    writer.flush()?;
    writer.into_inner().map_err(|err| err.into_error().into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quarters_are_calendar_quarters_and_nothing_else() {
        let day = |text: &str| text.parse::<NaiveDate>().unwrap();
        assert_eq!(
            quarter("2026-Q1").unwrap(),
            (day("2026-01-01"), day("2026-03-31"))
        );
        assert_eq!(
            quarter("2024-Q4").unwrap(),
            (day("2024-10-01"), day("2024-12-31"))
        );
        for bad in [
            "2026-Q5",
            "2026-Q0",
            "2026",
            "2026-01-01",
            "Q1-2026",
            "9999-Q1",
            "",
        ] {
            assert!(quarter(bad).is_none(), "{bad}");
        }
    }
}
