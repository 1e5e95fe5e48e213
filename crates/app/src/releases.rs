//! Releases: a partnership's records by cell and agency kind for one calendar quarter at a
//! coarse resolution, disclosure-controlled by the publication gate, with the quarter's frozen
//! summary beside them (docs/privacy.md, "Releases"). This module drafts one; the store keeps
//! it, and the two-person approval is the front end's.

use std::collections::BTreeMap;

use atlas_access::RecordScope;
use atlas_analytics::comparison::{ANNUALISED_QUARTER, QUARTERS_A_YEAR, rate_per_10000};
use atlas_analytics::gate::{self, PeriodSummary, ShownTable, THRESHOLD};
use atlas_analytics::profile::{self, QuarterTally};
use atlas_domain::{AgeBand, AgencyKind, GssCode, Indicator, RecordKind, StoredResolution};
use atlas_store::populations::{self, PartnershipPopulation};
use atlas_store::releases::Draft;
use chrono::{Datelike as _, NaiveDate};
use h3o::CellIndex;
use serde::Serialize;
use utoipa::ToSchema;

use crate::analysis::{Analyses, AnalysisError, blocking};
use crate::figures::{Figure, PopulationView};
use crate::places::PlaceNames;
use crate::products::{closed_quarter, period_summaries};

/// The resolution of a release when none is asked for.
pub const DEFAULT_RESOLUTION: u8 = 6;
/// The resolutions a release may use: none finer than 7.
pub const RELEASE_RESOLUTIONS: std::ops::RangeInclusive<u8> = 5..=7;

/// The published content of a release: the gated table of records by cell and agency kind,
/// and the quarter's summary. Stored with the release as JSON and served as stored.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseContent {
    /// The calendar quarter, such as `2026-Q1`.
    pub period: String,
    /// The H3 resolution of its cells.
    pub resolution: u8,
    /// What the table counts: `records`.
    pub measure: &'static str,
    /// Counts from 1 to this are shown as `c`.
    pub threshold: u32,
    /// How counts above the threshold are protected.
    pub perturbation: &'static str,
    /// The table's columns: agency kinds.
    pub columns: Vec<AgencyKind>,
    /// One row per cell of the partnership's coverage at the resolution.
    pub rows: Vec<ReleaseRow>,
    /// Records by agency kind: the quarter's frozen summary's figures.
    pub column_totals: Vec<Figure>,
    /// Records: the quarter's frozen summary's figure.
    pub grand_total: Figure,
    /// The quarter's figures beside the table.
    pub summary: ReleaseSummary,
    /// Where the place names of the rows come from (none when no place is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place_attribution: Option<String>,
}

/// One cell's row of a release's table.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseRow {
    /// The H3 cell.
    pub cell: String,
    /// Where the cell's centre is, in words, from the nearest of the partnership's places
    /// ("Preston centre", "4 km north of Chorley"; empty when no place is known).
    pub near: String,
    /// Records by agency kind, in the order of `columns`.
    pub values: Vec<Figure>,
    /// The row's total.
    pub total: Figure,
}

/// The quarter's figures beside a release's table, from the gate.
#[derive(Debug, Serialize, ToSchema)]
pub struct ReleaseSummary {
    /// Distinct children.
    pub children: Figure,
    /// Distinct children per 10,000 aged 0 to 17 a year: the quarter's, annualised (times 4),
    /// as comparisons and the national export give rates (null where the children are
    /// suppressed or the population is unknown).
    pub rate_per_10000: Option<f64>,
    /// What the rate is, in words.
    pub rate_note: &'static str,
    /// The population the rate is built on.
    pub population: Option<PopulationView>,
    /// Records by risk indicator.
    #[schema(value_type = BTreeMap<String, Figure>)]
    pub records_by_indicator: BTreeMap<&'static str, Figure>,
    /// Distinct children by age band (`0-9` … `18-25`, then `not_recorded`), each child once
    /// by its latest record of the quarter: the row totals of the problem profile's board
    /// edition, so that neither can be subtracted from the other.
    #[schema(value_type = BTreeMap<String, Figure>)]
    pub children_by_age_band: BTreeMap<&'static str, Figure>,
    /// Records by record kind, as the board edition of the problem profile shows them.
    #[schema(value_type = BTreeMap<String, Figure>)]
    pub records_by_record_kind: BTreeMap<&'static str, Figure>,
}

/// The label of the age band row for records without one.
pub const AGE_NOT_RECORDED: &str = "not_recorded";

/// The gated table and summary as they are published. The column and grand totals are the
/// quarter's frozen summary's, the figures every other product of the quarter shows.
fn content(
    period: &str,
    resolution: u8,
    cells: &[CellIndex],
    table: &ShownTable,
    frozen: &PeriodSummary,
    summary: ReleaseSummary,
    places: &PlaceNames,
) -> ReleaseContent {
    ReleaseContent {
        period: period.to_owned(),
        resolution,
        measure: "records",
        threshold: THRESHOLD,
        perturbation: "cell-key: counts above the threshold are moved by up to 2, a fixed function of the count and its records' keys (docs/privacy.md)",
        columns: AgencyKind::ALL.to_vec(),
        rows: cells
            .iter()
            .zip(table.cells().zip(table.row_totals()))
            .map(|(cell, (values, total))| ReleaseRow {
                cell: cell.to_string(),
                near: places.describe_cell(*cell).unwrap_or_default(),
                values: values.map(Figure::Gated).collect(),
                total: Figure::Gated(total),
            })
            .collect(),
        column_totals: frozen
            .records_by_agency_kind
            .iter()
            .copied()
            .map(Figure::Gated)
            .collect(),
        grand_total: Figure::Gated(frozen.records),
        summary,
        place_attribution: places.attribution().map(ToOwned::to_owned),
    }
}

/// The quarter's figures beside the table, from the gate: distinct children and records per
/// indicator, the child population and the rate per 10,000 children (only where the children
/// are shown), children by age band and records by record kind (from `tally`).
fn summary(
    summary: &PeriodSummary,
    tally: &QuarterTally,
    population: Option<&PartnershipPopulation>,
) -> ReleaseSummary {
    let rate_per_10000 =
        summary
            .children
            .number()
            .zip(population)
            .and_then(|(children, population)| {
                rate_per_10000(
                    children.saturating_mul(QUARTERS_A_YEAR),
                    population.population_0_17,
                )
            });
    ReleaseSummary {
        children: Figure::Gated(summary.children),
        rate_per_10000,
        rate_note: ANNUALISED_QUARTER,
        population: population.map(PopulationView::from),
        records_by_indicator: Indicator::ALL
            .iter()
            .map(|indicator| indicator.as_str())
            .zip(
                summary
                    .records_by_indicator
                    .iter()
                    .copied()
                    .map(Figure::Gated),
            )
            .collect(),
        children_by_age_band: AgeBand::ALL
            .iter()
            .map(|band| band.as_str())
            .chain(std::iter::once(AGE_NOT_RECORDED))
            .zip(
                gate::publish_table(&tally.children_by_age_and_sex)
                    .row_totals()
                    .map(Figure::Gated),
            )
            .collect(),
        records_by_record_kind: RecordKind::ALL
            .iter()
            .map(|kind| kind.as_str())
            .zip(
                gate::publish_table(std::slice::from_ref(&tally.records_by_kind))
                    .cells()
                    .next()
                    .into_iter()
                    .flatten()
                    .map(Figure::Gated),
            )
            .collect(),
    }
}

impl Analyses {
    /// Drafts the release of `code`'s records within `scope` for the closed calendar quarter
    /// `period` (such as `2026-Q1`) at `resolution` (default [`DEFAULT_RESOLUTION`]) on
    /// `today`: the gated table over the partnership's whole coverage, with the quarter's
    /// frozen summary, the same figures neighbours and the national export see, so that a
    /// release cannot be subtracted from them.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for a period that is not a closed quarter or a resolution
    /// finer than a release may be; [`AnalysisError::Conflict`] when no agency contributed
    /// records in the quarter (a release of zeros would say there was nothing);
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn draft_release(
        &self,
        code: &GssCode,
        scope: RecordScope,
        period: &str,
        resolution: Option<u8>,
        today: NaiveDate,
    ) -> Result<Draft, AnalysisError> {
        let window = closed_quarter(period, today).map_err(AnalysisError::Question)?;
        let (from, to) = (window.first(), window.last);
        let resolution = resolution.unwrap_or(DEFAULT_RESOLUTION);
        if !RELEASE_RESOLUTIONS.contains(&resolution) {
            return Err(AnalysisError::Question(format!(
                "`resolution`: {resolution} is finer than a release may be; use 5, 6 or 7"
            )));
        }
        let stored = StoredResolution::try_from(resolution)
            .map_err(|err| AnalysisError::Question(err.to_string()))?;
        let h3 = stored.h3();
        let mut cells = crate::analysis::cells(&self.study_area(code, stored).await?).to_vec();
        cells.sort_unstable();
        let records = self.records(code, scope).await?;
        // The whole partnership's contributions decide whether there are data to release.
        if self
            .has_no_data(code, RecordScope::Partnership, (Some(from), Some(to)))
            .await?
        {
            return Err(AnalysisError::Conflict(format!(
                "no agency has contributed records for {code} in {period}: there are no data to release, and a release of zeros would say there was nothing"
            )));
        }
        let population = {
            let mut conn = self.database.connection().await?;
            let mut known = populations::of_partnerships(&mut conn, &[code.to_string()]).await?;
            populations::for_year(
                &known.remove(code.as_str()).unwrap_or_default(),
                from.year(),
            )
            .cloned()
        };
        let quarter = period_summaries(
            &self.database,
            &self.cache,
            std::slice::from_ref(code),
            &window,
        )
        .await?
        .remove(&(code.to_string(), period.to_owned()))
        .ok_or_else(|| AnalysisError::Internal(format!("no summary of {code} {period}")))?;
        let label = period.to_owned();
        let places = self.place_names(code).await?;
        let (table, published, summary_suppressed) = blocking("release", move || {
            let table = gate::cells_by_agency_kind(&records.records, &cells, h3, from, to);
            let suppressed = usize::from(quarter.children.number().is_none())
                + quarter
                    .records_by_indicator
                    .iter()
                    .filter(|figure| figure.number().is_none())
                    .count();
            let tally = profile::tally(&records.records, from, to);
            let summary = summary(&quarter, &tally, population.as_ref());
            // The one-way tables' suppressions, primary and secondary, as the gate counts them.
            let (ages, kinds) = (
                gate::publish_table(&tally.children_by_age_and_sex).suppressed(),
                gate::publish_table(std::slice::from_ref(&tally.records_by_kind)).suppressed(),
            );
            let suppressed = (suppressed + ages.0 + kinds.0, ages.1 + kinds.1);
            let published = serde_json::to_value(content(
                &label, resolution, &cells, &table, &quarter, summary, &places,
            ));
            (table, published, suppressed)
        })
        .await?;
        let published =
            published.map_err(|err| AnalysisError::Internal(format!("release content: {err}")))?;
        let (primary, secondary) = table.suppressed();
        let (summary_suppressed, tables_secondary) = summary_suppressed;
        Ok(Draft {
            partnership_code: code.clone(),
            period: period.to_owned(),
            resolution: i16::from(resolution),
            threshold: i32::try_from(THRESHOLD).unwrap_or(i32::MAX),
            // No rounding: the gate perturbs instead.
            rounding: 1,
            content: published,
            suppressed_primary: i32::try_from(primary + summary_suppressed).unwrap_or(i32::MAX),
            suppressed_secondary: i32::try_from(secondary + tables_secondary).unwrap_or(i32::MAX),
        })
    }
}
