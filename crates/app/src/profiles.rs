//! Problem profiles: a partnership's profile of one closed quarter — scale, who, what, where,
//! who knows, and gaps — with a chart-ready table and a few sentences of findings per section
//! (docs/profiles.md). Each profile is made once from the partnership's records in two
//! editions: its own, with exact counts, and the board edition for circulation, where every
//! count passed the publication gate and the quarter's totals are its frozen summary's.

use std::collections::BTreeMap;

use atlas_access::RecordScope;
use atlas_analytics::comparison::{
    ANNUALISED_QUARTER, Direction, QUARTERS_A_YEAR, direction, rate_per_10000,
};
use atlas_analytics::emerging::Step;
use atlas_analytics::gate::{self, Keyed, PeriodSummary, SETTLE_DAYS, THRESHOLD};
use atlas_analytics::grid::Filter;
use atlas_analytics::profile::{QuarterTally, tally};
use atlas_domain::{
    AgeBand, AgencyKind, CaseRecord, GssCode, Indicator, LocationRole, RecordKind, Sex,
};
use atlas_store::audit::NewEntry;
use atlas_store::profiles::{self, NewProfile, ProfileVersion};
use atlas_store::{agencies, batches, partnerships, populations, records};
use chrono::{Datelike as _, Months, NaiveDate};
use serde::Serialize;
use utoipa::ToSchema;

use crate::analysis::areas::HotspotArea;
use crate::analysis::{
    Adjustment, Analyses, AnalysisError, EmergingQuestion, GridQuestion, HotspotQuestion,
    HotspotSettings, Measure, blocking,
};
use crate::figures::{Figure, PopulationView};
use crate::places::PlaceNames;
use crate::products::{closed_quarter, period_summaries};
use crate::settings::ProblemProfileSettings;

/// Who generates a profile on the server's schedule, in the profile and the audit trail.
pub const SCHEDULE: &str = "schedule";

/// Quarters an emerging-pattern section looks back over, the profile's own included, in
/// monthly steps (an emerging analysis needs at least ten).
pub const EMERGING_QUARTERS: u32 = 8;

/// Which edition of a profile.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Edition {
    /// The partnership's own: exact counts, for its analysts.
    Own,
    /// For circulation: every count through the publication gate.
    Board,
}

/// One edition of a profile, as stored and served.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProfileContent {
    /// The partnership's GSS code.
    pub partnership: String,
    /// Its name.
    pub name: String,
    /// The calendar quarter, such as `2026-Q1`.
    pub period: String,
    /// Its first day.
    pub first_day: NaiveDate,
    /// Its last day.
    pub last_day: NaiveDate,
    /// Which edition this is.
    pub edition: Edition,
    /// How the counts are shown, in words.
    pub counts: String,
    /// The quarter's headline figures.
    pub scale: Scale,
    /// Scale, who, what, where, who knows and gaps, in that order.
    pub sections: Vec<Section>,
    /// The attribution of the place names used (none when no place is known).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub attribution: Option<String>,
}

/// The quarter's headline figures.
#[derive(Debug, Serialize, ToSchema)]
pub struct Scale {
    /// Distinct children with a record in the quarter.
    pub children: Figure,
    /// Records in the quarter.
    pub records: Figure,
    /// Children per 10,000 aged 0 to 17, annualised (null where the children are suppressed
    /// or the population is unknown).
    pub rate_per_10000: Option<f64>,
    /// What the rate is, in words.
    pub rate_note: &'static str,
    /// The population the rate is built on.
    pub population: Option<PopulationView>,
    /// Children whose first record of all falls in the quarter.
    pub new_children: Figure,
    /// Children known from an earlier record.
    pub known_children: Figure,
    /// The change from the previous quarter.
    pub previous_quarter: Change,
    /// The change from the same quarter a year earlier.
    pub year_earlier: Change,
}

/// The children of an earlier quarter, and whether the quarter's differ by more than chance.
#[derive(Debug, Serialize, ToSchema)]
pub struct Change {
    /// The earlier quarter.
    pub period: String,
    /// Its children; null when no agency contributed records for it (no data, not zero).
    pub children: Option<Figure>,
    /// `up`, `down` or `no_clear_change` (the exact conditional test of two Poisson counts at
    /// the 5 % level); null without data, or where either figure is suppressed.
    #[schema(schema_with = crate::comparison::direction_schema)]
    pub direction: Option<Direction>,
}

/// A section of a profile.
#[derive(Debug, Serialize, ToSchema)]
pub struct Section {
    /// `scale`, `who`, `what`, `where`, `who_knows` or `gaps`.
    pub id: &'static str,
    /// Its heading.
    pub title: &'static str,
    /// One or two sentences of findings per point, generated from its figures.
    pub findings: Vec<String>,
    /// Its tables (each also served as CSV under its name).
    pub tables: Vec<Table>,
}

/// A table of a profile: rows of labelled entries.
#[derive(Debug, Serialize, ToSchema)]
pub struct Table {
    /// Its name, unique within the profile (the CSV's name).
    pub name: &'static str,
    /// What it shows.
    pub title: String,
    /// The heading of the label column.
    pub label: &'static str,
    /// The headings of the other columns.
    pub columns: Vec<String>,
    /// Its rows.
    pub rows: Vec<Row>,
}

/// A row of a table.
#[derive(Debug, Serialize, ToSchema)]
pub struct Row {
    /// What the row is about.
    pub label: String,
    /// One entry per column.
    pub values: Vec<Entry>,
}

/// An entry of a table: a count, a whole number, a percentage (null where it cannot be given),
/// or words.
#[derive(Debug, Serialize)]
#[serde(untagged)]
pub enum Entry {
    /// A count, exact or published.
    Count(Figure),
    /// A whole number that is not a count of children or records: cells, batches, days,
    /// a confidence level.
    Whole(Option<i64>),
    /// A percentage, one decimal place.
    Number(Option<f64>),
    /// Words.
    Text(String),
}

// Written by hand: the derived schema would be `oneOf` its variants, and a number matches
// three of them.
impl utoipa::PartialSchema for Entry {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{AnyOfBuilder, ObjectBuilder, Type};
        AnyOfBuilder::new()
            .item(ObjectBuilder::new().schema_type(Type::Number))
            .item(ObjectBuilder::new().schema_type(Type::String))
            .item(ObjectBuilder::new().schema_type(Type::Null))
            .description(Some(
                "A table entry: a count (a number, or \"c\" where the publication gate suppressed it), a whole number, a percentage, words, or null where a share cannot be given",
            ))
            .into()
    }
}

impl ToSchema for Entry {}

/// A stored profile.
#[derive(Debug)]
pub struct Generated {
    /// Its version as stored.
    pub version: ProfileVersion,
    /// Whether it was stored now, rather than found: a request when the records had not
    /// changed, or a schedule or request that another process or request stored first.
    pub new: bool,
}

/// How one edition shows a count.
#[derive(Clone, Copy)]
struct Editor {
    edition: Edition,
}

impl Editor {
    /// A count that stands alone.
    fn one(self, figure: Keyed) -> Figure {
        match self.edition {
            Edition::Own => Figure::Exact(figure.count),
            Edition::Board => Figure::Gated(gate::publish(figure)),
        }
    }

    /// A row of counts that add up to a total, with the total.
    fn row(self, figures: &[Keyed]) -> (Vec<Figure>, Figure) {
        let table = self.table(std::slice::from_ref(&figures.to_vec()));
        (
            table.cells.into_iter().next().unwrap_or_default(),
            table.grand_total,
        )
    }

    /// A table of counts with its totals, secondary suppression in the board edition.
    fn table(self, cells: &[Vec<Keyed>]) -> TableFigures {
        match self.edition {
            Edition::Own => {
                let exact = |figures: &mut dyn Iterator<Item = &Keyed>| {
                    Figure::Exact(figures.map(|figure| figure.count).sum())
                };
                let columns = cells.first().map_or(0, Vec::len);
                TableFigures {
                    cells: cells
                        .iter()
                        .map(|row| {
                            row.iter()
                                .map(|figure| Figure::Exact(figure.count))
                                .collect()
                        })
                        .collect(),
                    row_totals: cells.iter().map(|row| exact(&mut row.iter())).collect(),
                    column_totals: (0..columns)
                        .map(|column| exact(&mut cells.iter().filter_map(|row| row.get(column))))
                        .collect(),
                    grand_total: exact(&mut cells.iter().flatten()),
                }
            }
            Edition::Board => {
                let table = gate::publish_table(cells);
                TableFigures {
                    cells: table
                        .cells()
                        .map(|row| row.map(Figure::Gated).collect())
                        .collect(),
                    row_totals: table.row_totals().map(Figure::Gated).collect(),
                    column_totals: table.column_totals().map(Figure::Gated).collect(),
                    grand_total: Figure::Gated(table.grand_total()),
                }
            }
        }
    }
}

/// A table's figures as an edition shows them.
struct TableFigures {
    /// The entries, row by row.
    cells: Vec<Vec<Figure>>,
    /// Each row's total.
    row_totals: Vec<Figure>,
    /// Each column's total.
    column_totals: Vec<Figure>,
    /// The grand total.
    grand_total: Figure,
}

/// The number of a figure, `None` where suppressed.
const fn number(figure: Figure) -> Option<u32> {
    match figure {
        Figure::Exact(count) => Some(count),
        Figure::Gated(shown) => shown.number(),
    }
}

/// `part` as a percentage of `whole`, one decimal place; `None` where either is suppressed or
/// the whole is 0.
fn share(part: Figure, whole: Figure) -> Option<f64> {
    let (part, whole) = (number(part)?, number(whole)?);
    (whole > 0).then(|| (f64::from(part) * 1000.0 / f64::from(whole)).round() / 10.0)
}

/// Orders figures largest first as an edition shows them, suppressed ones last.
fn largest_first(a: Figure, b: Figure) -> std::cmp::Ordering {
    match (number(a), number(b)) {
        (Some(a), Some(b)) => b.cmp(&a),
        (Some(_), None) => std::cmp::Ordering::Less,
        (None, Some(_)) => std::cmp::Ordering::Greater,
        (None, None) => std::cmp::Ordering::Equal,
    }
}

/// A figure in a sentence.
fn say(figure: Figure) -> String {
    match number(figure) {
        Some(count) => count.to_string(),
        None => format!("fewer than {}", THRESHOLD + 1),
    }
}

/// A percentage in a sentence.
fn say_share(share: Option<f64>) -> String {
    share.map_or_else(
        || "an undisclosed share".to_owned(),
        |share| format!("{share:.1} %"),
    )
}

/// A count column's entries.
fn counts(figures: impl IntoIterator<Item = Figure>) -> Vec<Entry> {
    figures.into_iter().map(Entry::Count).collect()
}

/// The calendar quarter starting on `first`, such as `2026-Q1`.
fn quarter_label(first: NaiveDate) -> String {
    gate::label(Step::Quarter, first)
}

/// The calendar quarter `months` before the one starting on `first`: its first and last days.
fn quarter_before(first: NaiveDate, months: u32) -> (NaiveDate, NaiveDate) {
    let start = first - Months::new(months);
    let end = start + Months::new(3) - chrono::Days::new(1);
    (start, end)
}

/// What a profile is made from, beyond the records: the facts the store holds about the
/// quarter.
struct Facts {
    code: GssCode,
    name: String,
    period: String,
    first: NaiveDate,
    last: NaiveDate,
    population: Option<populations::PartnershipPopulation>,
    /// The quarter's frozen summary, and the earlier quarters' (None without data).
    frozen: PeriodSummary,
    previous: Option<Earlier>,
    year_earlier: Option<Earlier>,
    previous_label: String,
    year_earlier_label: String,
    areas: Result<Vec<HotspotArea>, String>,
    hotspot_resolution: Option<u8>,
    /// Where the names of the areas come from.
    place_attribution: Option<String>,
    emerging: Result<Patterns, String>,
    contributors: Vec<Contributor>,
    withdrawn_batches: usize,
}

/// An earlier quarter with data: its label, its tallies and its frozen summary.
type Earlier = (String, QuarterTally, PeriodSummary);

/// Cells by emerging pattern, most first, and the resolution of the analysis (coarsened from
/// the partnership's analysis resolution when that was more work than one analysis may be).
struct Patterns {
    cells: Vec<(String, usize)>,
    resolution: u8,
}

/// An agency serving the partnership and what it sent for the quarter.
struct Contributor {
    name: String,
    kind: AgencyKind,
    batches: usize,
    geocoded_share: Option<f64>,
    indicator_completeness: Option<f64>,
    days_after_quarter: Option<i64>,
}

impl Analyses {
    /// Generates `code`'s profile of the closed quarter `period` on `today` and stores it with
    /// `entry` in the audit trail: by the schedule (`scheduled`), only when the quarter has no
    /// profile yet; on request, as the next version unless the partnership's records have not
    /// changed since the latest, which is then returned as it is.
    ///
    /// # Errors
    /// [`AnalysisError::Question`] for a period that is not a closed quarter;
    /// [`AnalysisError::Conflict`] when no agency contributed records for the quarter;
    /// [`AnalysisError::NotFound`]; [`AnalysisError::Store`].
    pub async fn generate_profile(
        &self,
        code: &GssCode,
        period: &str,
        today: NaiveDate,
        generated_by: &str,
        scheduled: bool,
        entry: &NewEntry,
    ) -> Result<Generated, AnalysisError> {
        let window = closed_quarter(period, today).map_err(AnalysisError::Question)?;
        let (data_version, latest) = {
            let mut conn = self.database.connection().await?;
            let data_version = records::data_version(&mut conn, code)
                .await?
                .ok_or_else(|| AnalysisError::unknown(code))?;
            (
                data_version,
                profiles::latest_version(&mut conn, code.as_str(), period).await?,
            )
        };
        if let Some(latest) = latest
            && (scheduled || latest.data_version == data_version)
        {
            return Ok(Generated {
                version: latest,
                new: false,
            });
        }
        let (content, board_content) = self
            .draft_profile(code, period, window.first(), window.last, today)
            .await?;
        let profile = NewProfile {
            partnership_code: code.to_string(),
            period: period.to_owned(),
            data_version,
            content,
            board_content,
        };
        let mut conn = self.database.connection().await?;
        let (version, new) =
            profiles::store(&mut conn, &profile, generated_by, scheduled, entry).await?;
        Ok(Generated { version, new })
    }

    /// Both editions of `code`'s profile of the quarter from `first` to `last`, as JSON.
    async fn draft_profile(
        &self,
        code: &GssCode,
        period: &str,
        first: NaiveDate,
        last: NaiveDate,
        today: NaiveDate,
    ) -> Result<(serde_json::Value, serde_json::Value), AnalysisError> {
        if self
            .has_no_data(code, RecordScope::Partnership, (Some(first), Some(last)))
            .await?
        {
            return Err(AnalysisError::Conflict(format!(
                "no agency has contributed records for {code} in {period}: there is nothing to profile"
            )));
        }
        let records = self.records(code, RecordScope::Partnership).await?;
        let facts = self
            .facts(code, period, first, last, today, &records.records)
            .await?;
        blocking("profile", move || {
            let now = tally(&records.records, first, last);
            let own = serde_json::to_value(content(&facts, &now, Edition::Own));
            let board = serde_json::to_value(content(&facts, &now, Edition::Board));
            own.and_then(|own| board.map(|board| (own, board)))
        })
        .await?
        .map_err(|err| AnalysisError::Internal(format!("profile content: {err}")))
    }

    /// What the store and the analyses say of the quarter.
    async fn facts(
        &self,
        code: &GssCode,
        period: &str,
        first: NaiveDate,
        last: NaiveDate,
        today: NaiveDate,
        all: &[CaseRecord],
    ) -> Result<Facts, AnalysisError> {
        let (partnership, population, agencies, quarter_batches) = {
            let mut conn = self.database.connection().await?;
            let partnership = partnerships::find(&mut conn, code)
                .await?
                .ok_or_else(|| AnalysisError::unknown(code))?;
            let mut known = populations::of_partnerships(&mut conn, &[code.to_string()]).await?;
            let population = populations::for_year(
                &known.remove(code.as_str()).unwrap_or_default(),
                first.year(),
            )
            .cloned();
            let agencies: Vec<agencies::Agency> = agencies::list(&mut conn)
                .await?
                .into_iter()
                .filter(|agency| agency.partnerships.contains(code))
                .collect();
            let quarter_batches = batches::of_period(&mut conn, code.as_str(), first, last).await?;
            (partnership, population, agencies, quarter_batches)
        };
        let mut earlier = Vec::new();
        for months in [3, 12] {
            let (from, to) = quarter_before(first, months);
            let label = quarter_label(from);
            let known = if self
                .has_no_data(code, RecordScope::Partnership, (Some(from), Some(to)))
                .await?
            {
                None
            } else {
                let frozen = self.frozen_quarter(code, &label, today).await?;
                Some((label.clone(), tally(all, from, to), frozen))
            };
            earlier.push((label, known));
        }
        let [
            (previous_label, previous),
            (year_earlier_label, year_earlier),
        ]: [_; 2] = earlier
            .try_into()
            .map_err(|_| AnalysisError::Internal("two earlier quarters".to_owned()))?;
        let frozen = self.frozen_quarter(code, period, today).await?;
        let places = self.place_names(code).await?;
        let place_attribution = places.attribution().map(ToOwned::to_owned);
        let (areas, hotspot_resolution) =
            match self.quarter_hotspot_areas(code, first, last, &places).await {
                Ok((areas, resolution)) => (Ok(areas), Some(resolution)),
                Err(AnalysisError::Question(reason) | AnalysisError::OverBudget(reason)) => {
                    (Err(reason), None)
                }
                Err(err) => return Err(err),
            };
        let emerging = match self.emerging_patterns(code, first, last, today).await {
            Ok(patterns) => Ok(patterns),
            Err(AnalysisError::Question(reason) | AnalysisError::OverBudget(reason)) => Err(reason),
            Err(err) => return Err(err),
        };
        let contributors = agencies
            .iter()
            .map(|agency| {
                let sent: Vec<&batches::PeriodBatch> = quarter_batches
                    .iter()
                    .filter(|batch| batch.agency_id == agency.id && batch.status == "committed")
                    .collect();
                contributor(agency, &sent, last)
            })
            .collect();
        Ok(Facts {
            code: code.clone(),
            name: partnership.name,
            period: period.to_owned(),
            first,
            last,
            population,
            frozen,
            previous,
            year_earlier,
            previous_label,
            year_earlier_label,
            areas,
            hotspot_resolution,
            place_attribution,
            emerging,
            contributors,
            withdrawn_batches: quarter_batches
                .iter()
                .filter(|batch| batch.status != "committed")
                .count(),
        })
    }

    /// The frozen summary of `code`'s closed quarter `label` (frozen now when it is not yet):
    /// the figures every product of the quarter that leaves the partnership shows.
    async fn frozen_quarter(
        &self,
        code: &GssCode,
        label: &str,
        today: NaiveDate,
    ) -> Result<PeriodSummary, AnalysisError> {
        let window = closed_quarter(label, today).map_err(AnalysisError::Question)?;
        period_summaries(
            &self.database,
            &self.cache,
            std::slice::from_ref(code),
            &window,
        )
        .await?
        .remove(&(code.to_string(), label.to_owned()))
        .ok_or_else(|| AnalysisError::Internal(format!("no summary of {code} {label}")))
    }

    /// The quarter's hot spot areas (distinct children, population-adjusted where possible, at
    /// the partnership's analysis resolution): contiguous cells hot at 95 % or more, the
    /// children and records in them, named from the nearest place.
    async fn quarter_hotspot_areas(
        &self,
        code: &GssCode,
        first: NaiveDate,
        last: NaiveDate,
        places: &PlaceNames,
    ) -> Result<(Vec<HotspotArea>, u8), AnalysisError> {
        let resolution = self
            .analysis_resolution(code, RecordScope::Partnership)
            .await?
            .resolution;
        let question = HotspotQuestion {
            grid: GridQuestion {
                resolution,
                filter: Filter {
                    from: Some(first),
                    to: Some(last),
                    ..Filter::default()
                },
            },
            scope: RecordScope::Partnership,
            settings: HotspotSettings::default(),
        };
        let analysis = self.hotspots(code, &question).await?;
        let areas = self
            .hotspot_areas(code, &question, &analysis, places)
            .await?;
        Ok((areas, resolution.get()))
    }

    /// Cells by emerging pattern, month by month over the last [`EMERGING_QUARTERS`] quarters
    /// to the profile's (distinct children, population-adjusted where possible), most cells
    /// first; cells with no pattern left out.
    async fn emerging_patterns(
        &self,
        code: &GssCode,
        first: NaiveDate,
        last: NaiveDate,
        today: NaiveDate,
    ) -> Result<Patterns, AnalysisError> {
        let resolution = self
            .analysis_resolution(code, RecordScope::Partnership)
            .await?
            .resolution;
        let mut question = EmergingQuestion {
            grid: GridQuestion {
                resolution,
                filter: Filter {
                    from: Some(first - Months::new(3 * (EMERGING_QUARTERS - 1))),
                    to: Some(last),
                    ..Filter::default()
                },
            },
            scope: RecordScope::Partnership,
            step: Step::Month,
            k: 1,
            time_lag: 1,
            measure: Measure::Subjects,
            alpha: 0.05,
            adjustment: Adjustment::Population,
        };
        let analysis = self
            .emerging_within_budget(code, &mut question, today)
            .await?;
        let mut patterns: BTreeMap<&'static str, usize> = BTreeMap::new();
        for cell in &analysis.cells {
            let name = cell.category.as_str();
            if name != "no_pattern" {
                *patterns.entry(name).or_default() += 1;
            }
        }
        let mut patterns: Vec<(String, usize)> = patterns
            .into_iter()
            .map(|(name, cells)| (name.replace('_', " "), cells))
            .collect();
        patterns.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        Ok(Patterns {
            cells: patterns,
            resolution: question.grid.resolution.get(),
        })
    }
}

/// What `agency` sent for the quarter ending `last` in its committed batches `sent`.
fn contributor(
    agency: &agencies::Agency,
    sent: &[&batches::PeriodBatch],
    last: NaiveDate,
) -> Contributor {
    let weighted = |value: fn(&batches::PeriodBatch) -> (Option<f64>, i32)| {
        let (sum, weight) =
            sent.iter()
                .fold((0.0, 0_i64), |(sum, weight), batch| match value(batch) {
                    (Some(share), rows) => {
                        (sum + share * f64::from(rows), weight + i64::from(rows))
                    }
                    (None, _) => (sum, weight),
                });
        #[expect(clippy::cast_precision_loss, reason = "row counts are far below 2^52")]
        let share = (weight > 0).then(|| (sum * 1000.0 / weight as f64).round() / 10.0);
        share
    };
    Contributor {
        name: agency.name.clone(),
        kind: agency.kind,
        batches: sent.len(),
        geocoded_share: weighted(|batch| (batch.geocoded_share, batch.rows_total)),
        indicator_completeness: weighted(|batch| {
            (batch.indicator_completeness, batch.rows_accepted)
        }),
        days_after_quarter: sent
            .iter()
            .filter_map(|batch| batch.committed_at)
            .max()
            .map(|committed| (committed.date_naive() - last).num_days()),
    }
}

/// A partnership's profile of a quarter in one edition.
fn content(facts: &Facts, now: &QuarterTally, edition: Edition) -> ProfileContent {
    let editor = Editor { edition };
    let board = edition == Edition::Board;
    // The board edition's quarter totals are the frozen summary's: the figures every other
    // product of the quarter shows, so that none can be subtracted from another.
    let (children, records) = if board {
        (
            Figure::Gated(facts.frozen.children),
            Figure::Gated(facts.frozen.records),
        )
    } else {
        (editor.one(now.children), editor.one(now.records))
    };
    let scale = scale(facts, now, editor, children, records);
    let sections = vec![
        scale_section(facts, &scale),
        who(now, editor, children),
        what(now, editor, children, records),
        place(facts, now, editor, records),
        who_knows(facts, now, editor, children),
        gaps(facts, now),
    ];
    ProfileContent {
        partnership: facts.code.to_string(),
        name: facts.name.clone(),
        period: facts.period.clone(),
        first_day: facts.first,
        last_day: facts.last,
        edition,
        counts: if board {
            format!(
                "board edition for circulation: every count passed the publication gate (docs/privacy.md): counts from 1 to {THRESHOLD} are shown as c, with secondary suppression in tables; larger counts are moved by up to 2, a fixed function of the records counted; the quarter's totals are its frozen summary's"
            )
        } else {
            "the partnership's own edition: exact counts, not for circulation outside the partnership".to_owned()
        },
        scale,
        sections,
        attribution: facts.place_attribution.clone(),
    }
}

fn scale(
    facts: &Facts,
    now: &QuarterTally,
    editor: Editor,
    children: Figure,
    records: Figure,
) -> Scale {
    let change = |label: &String, earlier: &Option<Earlier>| {
        let before = earlier
            .as_ref()
            .map(|(_, tally, frozen)| match editor.edition {
                Edition::Board => Figure::Gated(frozen.children),
                Edition::Own => editor.one(tally.children),
            });
        Change {
            period: label.clone(),
            direction: before
                .and_then(number)
                .zip(number(children))
                .and_then(|(before, now)| direction(before, 1, now, 1)),
            children: before,
        }
    };
    let (split, _) = editor.row(&[now.new_children, now.known_children]);
    Scale {
        children,
        records,
        rate_per_10000: number(children).zip(facts.population.as_ref()).and_then(
            |(children, population)| {
                rate_per_10000(
                    children.saturating_mul(QUARTERS_A_YEAR),
                    population.population_0_17,
                )
            },
        ),
        rate_note: ANNUALISED_QUARTER,
        population: facts.population.as_ref().map(PopulationView::from),
        new_children: split[0],
        known_children: split[1],
        previous_quarter: change(&facts.previous_label, &facts.previous),
        year_earlier: change(&facts.year_earlier_label, &facts.year_earlier),
    }
}

/// The change in words.
fn say_change(change: &Change) -> String {
    match (&change.children, change.direction) {
        (None, _) => format!(
            "no agency contributed records for {}, so there is nothing to compare with",
            change.period
        ),
        (Some(before), Some(Direction::Up)) => format!(
            "up from {} children in {}, more than chance explains",
            say(*before),
            change.period
        ),
        (Some(before), Some(Direction::Down)) => format!(
            "down from {} children in {}, more than chance explains",
            say(*before),
            change.period
        ),
        (Some(before), _) => format!(
            "no clear change from {} children in {}",
            say(*before),
            change.period
        ),
    }
}

fn scale_section(facts: &Facts, scale: &Scale) -> Section {
    let rate = match (&scale.rate_per_10000, &scale.population) {
        (Some(rate), Some(population)) => format!(
            ": {rate:.1} children per 10,000 aged 0-17 a year (annualised; {} child population of {}{})",
            population.year,
            population.children_0_17,
            if population.approximate {
                ", an approximation"
            } else {
                ""
            }
        ),
        _ => String::new(),
    };
    let direction = |change: &Change| {
        change.direction.map_or_else(
            || "no comparison".to_owned(),
            |d| match d {
                Direction::Up => "up".to_owned(),
                Direction::Down => "down".to_owned(),
                Direction::NoClearChange => "no clear change".to_owned(),
            },
        )
    };
    let comparison_row = |change: &Change| Row {
        label: change.period.clone(),
        values: vec![
            change.children.map_or(Entry::Number(None), Entry::Count),
            Entry::Text(direction(change)),
        ],
    };
    Section {
        id: "scale",
        title: "Scale",
        findings: vec![
            format!(
                "{} children had {} records in {}{rate}.",
                say(scale.children),
                say(scale.records),
                facts.period
            ),
            format!(
                "{} of them had no earlier record (new to the partnership's data); {} were known already.",
                say(scale.new_children),
                say(scale.known_children)
            ),
            format!(
                "Against the previous quarter: {}; against the same quarter a year earlier: {}.",
                say_change(&scale.previous_quarter),
                say_change(&scale.year_earlier)
            ),
        ],
        tables: vec![
            Table {
                name: "scale",
                title: format!("Children and records, {}", facts.period),
                label: "figure",
                columns: vec!["value".to_owned()],
                rows: [
                    ("children", scale.children),
                    ("records", scale.records),
                    ("new children", scale.new_children),
                    ("children known before", scale.known_children),
                ]
                .into_iter()
                .map(|(label, figure)| Row {
                    label: label.to_owned(),
                    values: vec![Entry::Count(figure)],
                })
                .collect(),
            },
            Table {
                name: "change",
                title: "Children in earlier quarters".to_owned(),
                label: "quarter",
                columns: vec!["children".to_owned(), "change to this quarter".to_owned()],
                rows: vec![
                    comparison_row(&scale.previous_quarter),
                    comparison_row(&scale.year_earlier),
                ],
            },
        ],
    }
}

/// Who the children are: by age band and sex.
fn who(now: &QuarterTally, editor: Editor, children: Figure) -> Section {
    let table = editor.table(&now.children_by_age_and_sex);
    let labels: Vec<String> = AgeBand::ALL
        .iter()
        .map(|band| format!("aged {band}"))
        .chain(std::iter::once("age not recorded".to_owned()))
        .collect();
    let largest = labels
        .iter()
        .zip(&table.row_totals)
        .filter_map(|(label, total)| number(*total).map(|count| (label, count)))
        .max_by_key(|(_, count)| *count);
    // The column's total as the table publishes it, protected with the table.
    let girls = table.column_totals[position_of(Sex::ALL, Sex::Female)];
    let mut findings = Vec::new();
    if let Some((label, count)) = largest {
        findings.push(format!(
            "The largest age group was children {label}: {count} ({} of children).",
            say_share(share(Figure::Exact(count), children))
        ));
    }
    findings.push(format!(
        "{} of the children were recorded as female ({}).",
        say(girls),
        say_share(share(girls, children))
    ));
    let mut rows: Vec<Row> = labels
        .into_iter()
        .zip(table.cells.into_iter().zip(table.row_totals))
        .map(|(label, (row, total))| Row {
            label,
            values: counts(row.into_iter().chain(std::iter::once(total))),
        })
        .collect();
    rows.push(Row {
        label: "all ages".to_owned(),
        values: counts(
            table
                .column_totals
                .into_iter()
                .chain(std::iter::once(table.grand_total)),
        ),
    });
    Section {
        id: "who",
        title: "Who",
        findings,
        tables: vec![Table {
            name: "age_and_sex",
            title: "Children by age band and sex (each child by its latest record of the quarter)"
                .to_owned(),
            label: "age band",
            columns: Sex::ALL
                .iter()
                .map(|sex| sex_name(*sex).to_owned())
                .chain(std::iter::once("total".to_owned()))
                .collect(),
            rows,
        }],
    }
}

/// The position of `value` in `all`.
fn position_of<T: PartialEq>(all: &[T], value: T) -> usize {
    all.iter().position(|known| *known == value).unwrap_or(0)
}

/// A sex in words.
const fn sex_name(sex: Sex) -> &'static str {
    match sex {
        Sex::Female => "female",
        Sex::Male => "male",
        Sex::Other => "other",
        Sex::Unknown => "not recorded",
    }
}

/// A vocabulary name in words.
fn words(name: &str) -> String {
    name.replace('_', " ")
}

fn what(now: &QuarterTally, editor: Editor, children: Figure, records: Figure) -> Section {
    let indicators: Vec<(Indicator, Figure)> = Indicator::ALL
        .iter()
        .copied()
        .zip(
            now.children_with_indicator
                .iter()
                .map(|figure| editor.one(*figure)),
        )
        .collect();
    let top = indicators
        .iter()
        .filter_map(|(indicator, figure)| number(*figure).map(|count| (indicator, count, *figure)))
        .max_by_key(|(_, count, _)| *count);
    let repeated = editor.one(now.children_with_repeated_records);
    let (kinds, _) = editor.row(&now.records_by_kind);
    let mut findings = Vec::new();
    if let Some((indicator, _, figure)) = top {
        findings.push(format!(
            "The most common risk indicator was {} ({} children, {} of children).",
            words(indicator.as_str()),
            say(figure),
            say_share(share(figure, children))
        ));
    }
    // Ordered by the figures the edition shows (then by name), so that the board edition's
    // order says nothing its figures do not.
    let mut combinations: Vec<(String, Figure)> = now
        .combinations
        .iter()
        .map(|(combination, figure)| {
            let names: Vec<String> = combination.iter().map(|i| words(i.as_str())).collect();
            (names.join(" + "), editor.one(*figure))
        })
        .collect();
    combinations.sort_by(|a, b| largest_first(a.1, b.1).then_with(|| a.0.cmp(&b.0)));
    if let Some((combination, figure)) = combinations.first() {
        findings.push(format!(
            "The most common combination was {} ({} children).",
            combination.replace(" + ", " with "),
            say(*figure)
        ));
    }
    findings.push(format!(
        "{} children ({}) had two or more records in the quarter.",
        say(repeated),
        say_share(share(repeated, children))
    ));
    Section {
        id: "what",
        title: "What",
        findings,
        tables: vec![
            Table {
                name: "indicators",
                title: "Children with each risk indicator (a child may have several)".to_owned(),
                label: "indicator",
                columns: vec!["children".to_owned(), "% of children".to_owned()],
                rows: indicators
                    .iter()
                    .map(|(indicator, figure)| (words(indicator.as_str()), *figure))
                    .chain(std::iter::once((
                        "no indicator recorded".to_owned(),
                        editor.one(now.children_without_indicator),
                    )))
                    .map(|(label, figure)| Row {
                        label,
                        values: vec![Entry::Count(figure), Entry::Number(share(figure, children))],
                    })
                    .collect(),
            },
            Table {
                name: "combinations",
                title: "The most common combinations of two or more indicators".to_owned(),
                label: "indicators",
                columns: vec!["children".to_owned(), "% of children".to_owned()],
                rows: combinations
                    .iter()
                    .map(|(label, figure)| Row {
                        label: label.clone(),
                        values: vec![
                            Entry::Count(*figure),
                            Entry::Number(share(*figure, children)),
                        ],
                    })
                    .collect(),
            },
            Table {
                name: "record_kinds",
                title: "Records by kind".to_owned(),
                label: "record kind",
                columns: vec!["records".to_owned(), "% of records".to_owned()],
                rows: RecordKind::ALL
                    .iter()
                    .zip(kinds)
                    .map(|(kind, figure)| Row {
                        label: words(kind.as_str()),
                        values: vec![Entry::Count(figure), Entry::Number(share(figure, records))],
                    })
                    .collect(),
            },
            Table {
                name: "repeated_records",
                title: "Children with repeated records in the quarter".to_owned(),
                label: "children",
                columns: vec!["children".to_owned(), "% of children".to_owned()],
                rows: vec![Row {
                    label: "two or more records".to_owned(),
                    values: vec![
                        Entry::Count(repeated),
                        Entry::Number(share(repeated, children)),
                    ],
                }],
            },
        ],
    }
}

fn place(facts: &Facts, now: &QuarterTally, editor: Editor, records: Figure) -> Section {
    let mut findings = Vec::new();
    let mut tables = Vec::new();
    match &facts.areas {
        Ok(areas) if areas.is_empty() => findings.push(format!(
            "No hot spot area at 95 % confidence or more in {} (distinct children{}).",
            facts.period,
            facts
                .hotspot_resolution
                .map_or_else(String::new, |r| format!(", H3 resolution {r}"))
        )),
        Ok(areas) => {
            let mut areas: Vec<&HotspotArea> = areas.iter().collect();
            areas.sort_by(|a, b| {
                largest_first(editor.one(a.children), editor.one(b.children))
                    .then_with(|| a.name.cmp(&b.name))
            });
            let shown: Vec<(String, Figure)> = areas
                .iter()
                .map(|area| (area.name.clone(), editor.one(area.children)))
                .collect();
            findings.push(format!(
                "{} hot spot area{} at 95 % confidence or more: {}.",
                areas.len(),
                if areas.len() == 1 { "" } else { "s" },
                shown
                    .iter()
                    .map(|(place, children)| format!("{place} ({} children)", say(*children)))
                    .collect::<Vec<_>>()
                    .join("; ")
            ));
            let mut columns = vec![
                "confidence %".to_owned(),
                "cells".to_owned(),
                "children".to_owned(),
                "records".to_owned(),
            ];
            if editor.edition == Edition::Own {
                columns.push("H3 cells".to_owned());
            }
            tables.push(Table {
                name: "hotspot_areas",
                title: format!(
                    "Hot spot areas: contiguous cells hot at 95 % or more (H3 resolution {}), named from the nearest place",
                    facts.hotspot_resolution.unwrap_or_default()
                ),
                label: "area",
                columns,
                rows: areas
                    .iter()
                    .map(|area| {
                        let mut values = vec![
                            Entry::Whole(Some(i64::from(area.confidence))),
                            Entry::Whole(i64::try_from(area.cells.len()).ok()),
                            Entry::Count(editor.one(area.children)),
                            Entry::Count(editor.one(area.records)),
                        ];
                        if editor.edition == Edition::Own {
                            values.push(Entry::Text(
                                area.cells.iter().map(ToString::to_string).collect::<Vec<_>>().join(" "),
                            ));
                        }
                        Row {
                            label: area.name.clone(),
                            values,
                        }
                    })
                    .collect(),
            });
        }
        Err(reason) => findings.push(format!("No hotspot analysis was possible: {reason}.")),
    }
    match &facts.emerging {
        Ok(Patterns { cells, resolution }) if cells.is_empty() => findings.push(format!(
            "No emerging pattern, month by month over the {EMERGING_QUARTERS} quarters to {} (H3 resolution {resolution}).",
            facts.period
        )),
        Ok(Patterns {
            cells: patterns,
            resolution,
        }) => {
            findings.push(format!(
                "Month by month over the {EMERGING_QUARTERS} quarters to {}: {}.",
                facts.period,
                patterns
                    .iter()
                    .map(|(name, cells)| format!(
                        "{cells} cell{} {name}",
                        if *cells == 1 { "" } else { "s" }
                    ))
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
            tables.push(Table {
                name: "emerging_patterns",
                title: format!(
                    "Cells by emerging pattern, month by month over the {EMERGING_QUARTERS} quarters to {} (H3 resolution {resolution})",
                    facts.period
                ),
                label: "pattern",
                columns: vec!["cells".to_owned()],
                rows: patterns
                    .iter()
                    .map(|(name, cells)| Row {
                        label: name.clone(),
                        values: vec![Entry::Whole(i64::try_from(*cells).ok())],
                    })
                    .collect(),
            });
        }
        Err(reason) => findings.push(format!(
            "No emerging-pattern analysis was possible: {reason}."
        )),
    }
    let (roles, _) = editor.row(&now.records_by_location_role);
    let incident = roles[1];
    findings.push(format!(
        "{} of records gave the place of an incident, {} a home.",
        say_share(share(incident, records)),
        say_share(share(roles[0], records))
    ));
    tables.push(Table {
        name: "location_roles",
        title: "Records by what their location is".to_owned(),
        label: "location",
        columns: vec!["records".to_owned(), "% of records".to_owned()],
        rows: LocationRole::ALL
            .iter()
            .zip(roles)
            .map(|(role, figure)| Row {
                label: role_name(*role),
                values: vec![Entry::Count(figure), Entry::Number(share(figure, records))],
            })
            .collect(),
    });
    Section {
        id: "where",
        title: "Where",
        findings,
        tables,
    }
}

fn who_knows(facts: &Facts, now: &QuarterTally, editor: Editor, children: Figure) -> Section {
    let (by_kinds, _) = editor.row(&now.children_by_agency_kinds);
    // Children known to one kind of agency, by kind: to one agency, or to several of the kind.
    // One table, so that the gate protects the parts with their totals (the grand total is
    // `by_kinds[0]`'s children).
    let one_kind: Vec<Vec<Keyed>> = now
        .children_known_to_one_agency
        .iter()
        .zip(&now.children_known_to_several_agencies_of_one_kind)
        .map(|(alone, several)| vec![*alone, *several])
        .collect();
    let one_kind = editor.table(&one_kind);
    let alone_total = one_kind.column_totals[0];
    let records_by_kind: Vec<Figure> = match editor.edition {
        Edition::Board => facts
            .frozen
            .records_by_agency_kind
            .iter()
            .copied()
            .map(Figure::Gated)
            .collect(),
        Edition::Own => now
            .records_by_agency_kind
            .iter()
            .map(|figure| editor.one(*figure))
            .collect(),
    };
    // Which kinds contributed, by the figures the edition shows (the board edition's are the
    // frozen summary's).
    let contributed: Vec<AgencyKind> = AgencyKind::ALL
        .iter()
        .zip(&records_by_kind)
        .filter(|(_, figure)| number(**figure) != Some(0))
        .map(|(kind, _)| *kind)
        .collect();
    let missing: Vec<AgencyKind> = AgencyKind::ALL
        .iter()
        .copied()
        .filter(|kind| !contributed.contains(kind))
        .collect();
    let names = |kinds: &[AgencyKind]| {
        kinds
            .iter()
            .map(|kind| kind_name(*kind))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut findings = vec![
        format!(
            "{} children ({}) were known to one agency only in the quarter; {} to three or more kinds of agency.",
            say(alone_total),
            say_share(share(alone_total, children)),
            say(by_kinds[2])
        ),
        if missing.is_empty() {
            "Every kind of agency contributed records this quarter.".to_owned()
        } else {
            format!(
                "Contributed records: {}. No records from: {}.",
                names(&contributed),
                names(&missing)
            )
        },
    ];
    if !contributed.contains(&AgencyKind::Vcs) {
        findings.push("The voluntary sector contributed no records this quarter.".to_owned());
    }
    Section {
        id: "who_knows",
        title: "Who knows",
        findings,
        tables: vec![
            Table {
                name: "agency_kinds_per_child",
                title: "Children by how many kinds of agency knew them in the quarter".to_owned(),
                label: "kinds of agency",
                columns: vec!["children".to_owned(), "% of children".to_owned()],
                rows: ["one", "two", "three or more"]
                    .into_iter()
                    .zip(by_kinds)
                    .map(|(label, figure)| Row {
                        label: label.to_owned(),
                        values: vec![Entry::Count(figure), Entry::Number(share(figure, children))],
                    })
                    .collect(),
            },
            Table {
                name: "known_to_one_kind",
                title: "Children known to one kind of agency only, by its kind: to one agency (possible missed referrals) or to several of that kind".to_owned(),
                label: "agency kind",
                columns: vec![
                    "one agency only".to_owned(),
                    "several agencies of this kind".to_owned(),
                    "total".to_owned(),
                ],
                rows: AgencyKind::ALL
                    .iter()
                    .zip(one_kind.cells.into_iter().zip(one_kind.row_totals))
                    .map(|(kind, (parts, total))| Row {
                        label: kind_name(*kind).to_owned(),
                        values: counts(parts.into_iter().chain(std::iter::once(total))),
                    })
                    .chain(std::iter::once(Row {
                        label: "all kinds".to_owned(),
                        values: counts(
                            one_kind
                                .column_totals
                                .iter()
                                .copied()
                                .chain(std::iter::once(one_kind.grand_total)),
                        ),
                    }))
                    .collect(),
            },
            Table {
                name: "agency_kinds",
                title: "Records by kind of agency this quarter".to_owned(),
                label: "agency kind",
                columns: vec!["records".to_owned(), "contributed".to_owned()],
                rows: AgencyKind::ALL
                    .iter()
                    .zip(records_by_kind)
                    .map(|(kind, figure)| Row {
                        label: kind_name(*kind).to_owned(),
                        values: vec![
                            Entry::Count(figure),
                            Entry::Text(if contributed.contains(kind) { "yes" } else { "no" }.to_owned()),
                        ],
                    })
                    .collect(),
            },
            Table {
                name: "contributors",
                title: "Each agency serving the partnership: its uploads with records of the quarter and their quality".to_owned(),
                label: "agency",
                columns: vec![
                    "kind".to_owned(),
                    "batches".to_owned(),
                    "geocoded %".to_owned(),
                    "with indicators %".to_owned(),
                    "days from quarter end to last upload".to_owned(),
                ],
                rows: facts
                    .contributors
                    .iter()
                    .map(|agency| Row {
                        label: agency.name.clone(),
                        values: vec![
                            Entry::Text(kind_name(agency.kind).to_owned()),
                            Entry::Whole(i64::try_from(agency.batches).ok()),
                            Entry::Number(agency.geocoded_share),
                            Entry::Number(agency.indicator_completeness),
                            Entry::Whole(agency.days_after_quarter),
                        ],
                    })
                    .collect(),
            },
        ],
    }
}

/// An agency kind in words.
pub(crate) const fn kind_name(kind: AgencyKind) -> &'static str {
    match kind {
        AgencyKind::Police => "police",
        AgencyKind::SocialCare => "children's social care",
        AgencyKind::Health => "health",
        AgencyKind::Education => "education",
        AgencyKind::Yot => "youth offending team",
        AgencyKind::Probation => "probation",
        AgencyKind::Housing => "housing",
        AgencyKind::YouthServices => "youth services",
        AgencyKind::Vcs => "voluntary sector",
    }
}

fn gaps(facts: &Facts, now: &QuarterTally) -> Section {
    let mut findings = Vec::new();
    let silent: Vec<&Contributor> = facts
        .contributors
        .iter()
        .filter(|agency| agency.batches == 0)
        .collect();
    if !silent.is_empty() {
        findings.push(format!(
            "No upload with records of the quarter from: {}.",
            silent
                .iter()
                .map(|agency| agency.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    let unserved: Vec<&str> = AgencyKind::ALL
        .iter()
        .filter(|kind| {
            !facts
                .contributors
                .iter()
                .any(|agency| agency.kind == **kind)
        })
        .map(|kind| kind_name(*kind))
        .collect();
    if !unserved.is_empty() {
        findings.push(format!(
            "No agency of these kinds is registered for the partnership: {}.",
            unserved.join(", ")
        ));
    }
    let settle = i64::try_from(SETTLE_DAYS).unwrap_or(i64::MAX);
    let late: Vec<String> = facts
        .contributors
        .iter()
        .filter(|agency| agency.days_after_quarter.is_some_and(|days| days > settle))
        .map(|agency| {
            format!(
                "{} ({} days after the quarter ended)",
                agency.name,
                agency.days_after_quarter.unwrap_or_default()
            )
        })
        .collect();
    if !late.is_empty() {
        findings.push(format!(
            "Uploaded more than {SETTLE_DAYS} days after the quarter ended, after figures for partners may have been frozen: {}.",
            late.join(", ")
        ));
    }
    let early: Vec<&str> = facts
        .contributors
        .iter()
        .filter(|agency| agency.days_after_quarter.is_some_and(|days| days < 0))
        .map(|agency| agency.name.as_str())
        .collect();
    if !early.is_empty() {
        findings.push(format!(
            "Last uploaded before the quarter ended, so records of its last days may be missing: {}.",
            early.join(", ")
        ));
    }
    if facts.withdrawn_batches > 0 {
        findings.push(format!(
            "{} upload{} with records of the quarter {} withdrawn or replaced by a correction.",
            facts.withdrawn_batches,
            if facts.withdrawn_batches == 1 {
                ""
            } else {
                "s"
            },
            if facts.withdrawn_batches == 1 {
                "was"
            } else {
                "were"
            }
        ));
    }
    match &facts.population {
        Some(population) if population.approximate => findings.push(format!(
            "The child population ({}, {}) is an approximation, not an official estimate: rates are indicative.",
            population.source, population.year
        )),
        None => findings.push("No child population is loaded for the partnership: no rate is given.".to_owned()),
        Some(_) => {}
    }
    let without_age = now.children_by_age_and_sex[AgeBand::ALL.len()]
        .iter()
        .map(|figure| figure.count)
        .sum::<u32>();
    if without_age > 0 && now.children.count > 0 {
        findings.push("Some children have no age band recorded.".to_owned());
    }
    if findings.is_empty() {
        findings.push(
            "No gap found: every registered agency uploaded on time and populations are official."
                .to_owned(),
        );
    }
    Section {
        id: "gaps",
        title: "Gaps",
        findings,
        tables: Vec::new(),
    }
}

/// Runs the schedule for ever: every `settings.check_every_secs`, the profiles due are
/// generated ([`Analyses::scheduled_profiles`]); failures are logged and tried again at the
/// next check.
pub async fn run_schedule(analyses: Analyses, settings: ProblemProfileSettings) {
    let mut ticks =
        tokio::time::interval(std::time::Duration::from_secs(settings.check_every_secs));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        let today = chrono::Utc::now().date_naive();
        if let Err(err) = analyses.scheduled_profiles(today, &settings).await {
            tracing::warn!(error = %err, "the profile schedule could not run; it tries again at its next check");
        }
    }
}

impl Analyses {
    /// Generates, for every partnership, its profile of the quarter due on `today`
    /// ([`due_quarter`]) and of the `backfill_quarters` before it, each when the partnership
    /// has records for the quarter and no profile of it yet; returns how many were generated
    /// now.
    ///
    /// # Errors
    /// [`AnalysisError::Store`] when the partnerships cannot be listed; a partnership whose
    /// profile fails is logged and left for the next run.
    pub async fn scheduled_profiles(
        &self,
        today: NaiveDate,
        settings: &ProblemProfileSettings,
    ) -> Result<usize, AnalysisError> {
        let Some((due, _)) =
            crate::export::quarter(&due_quarter(today, settings.days_after_quarter))
        else {
            return Ok(0);
        };
        let starts: Vec<NaiveDate> = (0..=settings.backfill_quarters)
            .rev()
            .map(|back| due - Months::new(3 * back))
            .collect();
        let last = due + Months::new(3) - chrono::Days::new(1);
        let contributed = {
            let mut conn = self.database.connection().await?;
            let codes: Vec<String> = partnerships::list(&mut conn)
                .await?
                .into_iter()
                .map(|partnership| partnership.code.to_string())
                .collect();
            batches::contributed_periods(&mut conn, &codes, &starts, last, None).await?
        };
        let mut generated = 0;
        for (code, periods) in contributed {
            let Ok(code) = code.parse::<GssCode>() else {
                continue;
            };
            for (start, _) in starts.iter().zip(periods).filter(|(_, with)| *with) {
                let period = quarter_label(*start);
                let mut entry =
                    NewEntry::operator(SCHEDULE.to_owned(), "profile.generate", String::new());
                entry.partnership = Some(code.to_string());
                entry.records_of = vec![code.to_string()];
                entry.parameters.insert("period".to_owned(), period.clone());
                match self
                    .generate_profile(&code, &period, today, SCHEDULE, true, &entry)
                    .await
                {
                    Ok(profile) if profile.new => {
                        generated += 1;
                        tracing::info!(partnership = %code, period, "scheduled profile generated");
                    }
                    Ok(_) => {}
                    Err(err) => {
                        tracing::warn!(partnership = %code, period, error = %err, "a scheduled profile failed; it is tried again at the next check")
                    }
                }
            }
        }
        Ok(generated)
    }
}

/// The closed quarter a schedule `days_after` days past each quarter's end profiles on
/// `today`: the latest quarter that ended at least that many days before.
#[must_use]
pub fn due_quarter(today: NaiveDate, days_after: u32) -> String {
    // The quarter holding the day after `today - days_after` is the first not ended by then.
    let next = today - chrono::Days::new(u64::from(days_after)) + chrono::Days::new(1);
    let unended =
        NaiveDate::from_ymd_opt(next.year(), (next.month0() / 3) * 3 + 1, 1).unwrap_or(next);
    quarter_label(unended - Months::new(3))
}

/// The table named `name` of a stored edition, as CSV lines: the header, then one line per
/// row. `None` when the edition has no such table.
#[must_use]
pub fn table_lines(
    content: &serde_json::Value,
    name: &str,
) -> Option<(Vec<String>, Vec<Vec<String>>)> {
    let table = content["sections"]
        .as_array()?
        .iter()
        .flat_map(|section| section["tables"].as_array().into_iter().flatten())
        .find(|table| table["name"] == name)?;
    let text = |value: &serde_json::Value| match value {
        serde_json::Value::String(text) => text.clone(),
        serde_json::Value::Null => String::new(),
        other => other.to_string(),
    };
    let mut header = vec![text(&table["label"])];
    header.extend(table["columns"].as_array()?.iter().map(text));
    let rows = table["rows"]
        .as_array()?
        .iter()
        .map(|row| {
            let mut line = vec![text(&row["label"])];
            line.extend(row["values"].as_array().into_iter().flatten().map(text));
            line
        })
        .collect();
    Some((header, rows))
}

/// The names of the tables of a stored edition.
#[must_use]
pub fn table_names(content: &serde_json::Value) -> Vec<String> {
    content["sections"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|section| section["tables"].as_array().into_iter().flatten())
        .filter_map(|table| table["name"].as_str().map(str::to_owned))
        .collect()
}

/// Names a location role for the profile's tables.
fn role_name(role: LocationRole) -> String {
    words(role.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_due_quarter_is_the_latest_ended_the_configured_days_ago() {
        let day = |text: &str| text.parse::<NaiveDate>().expect("date");
        assert_eq!(due_quarter(day("2026-05-05"), 35), "2026-Q1");
        assert_eq!(due_quarter(day("2026-05-04"), 35), "2025-Q4");
        assert_eq!(due_quarter(day("2026-01-15"), 0), "2025-Q4");
        assert_eq!(due_quarter(day("2026-01-01"), 0), "2025-Q4");
    }

    #[test]
    fn shares_are_withheld_where_a_figure_is() {
        let c = Figure::Gated(gate::publish(Keyed { count: 3, key: 0 }));
        assert_eq!(share(c, Figure::Exact(100)), None);
        assert_eq!(share(Figure::Exact(1), Figure::Exact(3)), Some(33.3));
        assert_eq!(share(Figure::Exact(1), Figure::Exact(0)), None);
    }
}
