//! The query string of the analysis endpoints: structs that document their parameters
//! (`IntoParams`, so the OpenAPI document lists exactly what is read) and are read key by key
//! into the typed questions of [`atlas_app::analysis`]. An unknown or repeated key, or a value
//! that does not parse, is an error that names it (a misspelt filter must not silently widen
//! the answer).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::str::FromStr;

use actix_web::http::header::ACCEPT;
use actix_web::{HttpRequest, web};
use atlas_access::RecordScope;
use atlas_analytics::emerging::Step;
use atlas_analytics::gistar::Kernel;
use atlas_analytics::grid::{Filter, IndicatorMatch};
use atlas_app::analysis::{
    Adjustment, EmergingQuestion, GridQuestion, HotspotSettings, RegionalQuestion,
};
use atlas_domain::StoredResolution;
use chrono::NaiveDate;
use utoipa::IntoParams;
use utoipa::openapi::path::ParameterIn;

use crate::ApiError;
use crate::dates;
use crate::render::{Format, GEO_JSON};

/// The query string, read key by key so that an unknown or repeated key is an error that names
/// it (a misspelt filter must not silently widen the answer).
pub(crate) struct Params(BTreeMap<String, String>);

impl Params {
    pub(crate) fn parse(request: &HttpRequest) -> Result<Self, ApiError> {
        let pairs = web::Query::<Vec<(String, String)>>::from_query(request.query_string())
            .map_err(|err| ApiError::BadRequest(format!("the query string is malformed: {err}")))?
            .into_inner();
        let mut params = BTreeMap::new();
        for (key, value) in pairs {
            if params.insert(key.clone(), value).is_some() {
                return Err(ApiError::BadRequest(format!(
                    "`{key}` is given twice; separate several values with commas"
                )));
            }
        }
        Ok(Self(params))
    }

    /// The first of `keys` the query string holds.
    pub(crate) fn first_of<'a>(&self, keys: &[&'a str]) -> Option<&'a str> {
        keys.iter().copied().find(|key| self.0.contains_key(*key))
    }

    /// Takes `key` parsed as a `T`, or 400 naming it. A date ([`NaiveDate`]), whichever
    /// handler reads it, must also lie in the domain of [`crate::dates`].
    pub(crate) fn take<T: FromStr + 'static>(&mut self, key: &str) -> Result<Option<T>, ApiError>
    where
        T::Err: Display,
    {
        let is_date = TypeId::of::<T>() == TypeId::of::<NaiveDate>();
        self.0
            .remove(key)
            .map(|value| {
                let parsed: T = value.trim().parse().map_err(|err| {
                    if is_date {
                        dates::out_of_domain(key, &value)
                    } else {
                        ApiError::BadRequest(format!("`{key}`: {err}"))
                    }
                })?;
                if let Some(day) = (&parsed as &dyn Any).downcast_ref::<NaiveDate>() {
                    dates::check(key, *day)?;
                }
                Ok(parsed)
            })
            .transpose()
    }

    /// Refuses a key nobody took: it is unknown to the endpoint, whose keys are those its query
    /// structs document (`documented`, each from [`documented`]).
    pub(crate) fn finish_documented(self, documented: &[Vec<String>]) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(key) => Err(ApiError::BadRequest(format!(
                "unknown parameter `{key}`; this endpoint takes {}",
                documented.concat().join(", ")
            ))),
        }
    }
}

/// The names of the query parameters `Q` documents.
pub(crate) fn documented<Q: IntoParams>() -> Vec<String> {
    Q::into_params(|| Some(ParameterIn::Query))
        .into_iter()
        .map(|parameter| parameter.name)
        .collect()
}

/// The grid's question in the query string of the grid, hotspot and emerging endpoints: it
/// documents the parameters (OpenAPI) and names the keys [`Params::finish_documented`] accepts, so the
/// document and the parser cannot disagree. Read by [`grid_question`].
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct GridQuery {
    /// H3 resolution 5 to 9 (default: 8 for the grid; for hotspots and emerging hotspots the
    /// partnership's analysis resolution, chosen from its data and explained in
    /// `settings.resolution_chosen`).
    pub resolution: Option<u8>,
    /// First day included (YYYY-MM-DD, 2000-01-01 to 2099-12-31).
    pub from: Option<NaiveDate>,
    /// Last day included.
    pub to: Option<NaiveDate>,
    /// Comma-separated agency kinds.
    pub agency_kinds: Option<String>,
    /// Comma-separated record kinds.
    pub record_kinds: Option<String>,
    /// Comma-separated indicators.
    pub indicators: Option<String>,
    /// `any` (default) or `all` of `indicators`.
    pub indicator_match: Option<String>,
    /// Comma-separated age bands.
    pub age_bands: Option<String>,
    /// Comma-separated sexes (F, M, X, U).
    pub sexes: Option<String>,
    /// Comma-separated location roles.
    pub location_roles: Option<String>,
    /// `json` (default), `geojson` or `csv`.
    pub format: Option<String>,
}

/// The statistic's settings of the hotspot endpoint (read by [`hotspot_settings`]).
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct HotspotSettingsQuery {
    /// k-ring size 1 to 3 (default 1).
    pub k: Option<u32>,
    /// `uniform` (default), `triangular` or `gaussian`.
    pub kernel: Option<String>,
    /// `subjects` (default: distinct children, so one child with many records cannot make a
    /// hot spot) or `records`.
    pub value: Option<String>,
    /// Conditional permutations (default 0: the randomisation test).
    pub permutations: Option<u32>,
    /// False-discovery rate (default 0.05).
    pub alpha: Option<f64>,
    /// `population` (default: counts set against the children living in each cell, so that a
    /// hot spot is more children affected than the population would lead us to expect) or
    /// `none` (raw counts, where a hot spot may only be where many children live).
    pub adjust: Option<String>,
    /// `true` to compare the hot spots with the same question at the resolutions either side
    /// (`sensitivity` in the answer; with permutations=0 only); default `false`.
    pub sensitivity: Option<bool>,
}

/// The time steps and settings of the emerging hotspot endpoint, beside the grid's question.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct EmergingQuery {
    /// `week`, `month` (default) or `quarter`; at least 10 whole, ended steps between `from`
    /// and `to` (which default to the earliest and latest record).
    pub step: Option<String>,
    /// k-ring size 1 to 3 (default 1).
    pub k: Option<u32>,
    /// Earlier steps in each bin's neighbourhood, 0 to 12 (default 1).
    pub time_lag: Option<usize>,
    /// `subjects` (default: distinct children) or `records`.
    pub value: Option<String>,
    /// False-discovery rate for bins and level for trends (default 0.05).
    pub alpha: Option<f64>,
    /// `population` (default: each bin's count against the children living there) or `none`
    /// (space-time Gi* on raw counts).
    pub adjust: Option<String>,
}

/// The regional hotspot endpoint's query: whole closed quarters, no filters, settings from a
/// small menu.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct RegionalQuery {
    /// H3 resolution 5 to 9 (default 8).
    pub resolution: Option<u8>,
    /// A day of the first quarter (default: four closed quarters back).
    pub from: Option<NaiveDate>,
    /// A day of the last quarter; a quarter not yet ended is left out (default: the last closed
    /// quarter).
    pub to: Option<NaiveDate>,
    /// `json` (default), `geojson` or `csv`.
    pub format: Option<String>,
    /// k-ring size 1 to 3 (default 1).
    pub k: Option<u32>,
    /// `uniform` (default), `triangular` or `gaussian`.
    pub kernel: Option<String>,
    /// `subjects` (default: distinct children) or `records`.
    pub value: Option<String>,
    /// 0 (default: each neighbourhood against the children living there, as a partnership's own
    /// hotspots, with the uniform kernel) or 999 conditional permutations (on raw counts, as
    /// with the triangular and gaussian kernels).
    pub permutations: Option<u32>,
    /// False-discovery rate: 0.01, 0.05 (default) or 0.1.
    pub alpha: Option<f64>,
}

/// A comma-separated list of `key`'s values, each parsed as a `T` (empty when absent), or 400
/// naming `key`.
fn parse_set<T: FromStr + Ord>(key: &str, list: Option<String>) -> Result<BTreeSet<T>, ApiError>
where
    T::Err: Display,
{
    list.map_or_else(
        || Ok(BTreeSet::new()),
        |list| {
            list.split(',')
                .filter(|part| !part.trim().is_empty())
                .map(|part| {
                    part.trim()
                        .parse()
                        .map_err(|err| ApiError::BadRequest(format!("`{key}`: {err}")))
                })
                .collect()
        },
    )
}

/// The answer's format: `format`, or GeoJSON when it is absent and the `Accept` header asks for
/// it.
fn format_of(request: &HttpRequest, format: Option<&str>) -> Result<Format, ApiError> {
    let wants_geojson = request
        .headers()
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains(GEO_JSON));
    match format {
        None if wants_geojson => Ok(Format::GeoJson),
        None | Some("json") => Ok(Format::Json),
        Some("geojson") => Ok(Format::GeoJson),
        Some("csv") => Ok(Format::Csv),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`format`: `{other}` is not json, geojson or csv"
        ))),
    }
}

/// A stored resolution, 8 when absent, or 400.
fn resolution_of(resolution: Option<u8>) -> Result<StoredResolution, ApiError> {
    StoredResolution::try_from(resolution.unwrap_or(8))
        .map_err(|err| ApiError::BadRequest(format!("`resolution`: {err}")))
}

/// `from` and `to`, or 400 when `to` is before `from`.
fn period_of(
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(Option<NaiveDate>, Option<NaiveDate>), ApiError> {
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(ApiError::BadRequest("`to` is before `from`".to_owned()));
    }
    Ok((from, to))
}

impl GridQuery {
    /// Takes the grid's parameters from `params`.
    pub(crate) fn read(params: &mut Params) -> Result<Self, ApiError> {
        Ok(Self {
            resolution: params.take("resolution")?,
            from: params.take("from")?,
            to: params.take("to")?,
            agency_kinds: params.take("agency_kinds")?,
            record_kinds: params.take("record_kinds")?,
            indicators: params.take("indicators")?,
            indicator_match: params.take("indicator_match")?,
            age_bands: params.take("age_bands")?,
            sexes: params.take("sexes")?,
            location_roles: params.take("location_roles")?,
            format: params.take("format")?,
        })
    }

    /// The grid part of a question, and the answer's format (`format`, or GeoJSON when the
    /// `Accept` header asks for it).
    pub(crate) fn question(
        self,
        request: &HttpRequest,
    ) -> Result<(GridQuestion, Format), ApiError> {
        let resolution = resolution_of(self.resolution)?;
        let (from, to) = period_of(self.from, self.to)?;
        let indicator_match = match self.indicator_match.as_deref() {
            None | Some("any") => IndicatorMatch::Any,
            Some("all") => IndicatorMatch::All,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "`indicator_match`: `{other}` is not `any` or `all`"
                )));
            }
        };
        let filter = Filter {
            from,
            to,
            agency_kinds: parse_set("agency_kinds", self.agency_kinds)?,
            record_kinds: parse_set("record_kinds", self.record_kinds)?,
            indicators: parse_set::<atlas_domain::Indicator>("indicators", self.indicators)?
                .into_iter()
                .collect(),
            indicator_match,
            age_bands: parse_set("age_bands", self.age_bands)?,
            sexes: parse_set("sexes", self.sexes)?,
            location_roles: parse_set("location_roles", self.location_roles)?,
        };
        let format = format_of(request, self.format.as_deref())?;
        Ok((GridQuestion { resolution, filter }, format))
    }
}

/// The kernel named `kernel` (uniform when absent), or 400.
fn kernel_of(kernel: Option<&str>) -> Result<Kernel, ApiError> {
    match kernel {
        None | Some("uniform") => Ok(Kernel::Uniform),
        Some("triangular") => Ok(Kernel::Triangular),
        Some("gaussian") => Ok(Kernel::Gaussian),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`kernel`: `{other}` is not uniform, triangular or gaussian"
        ))),
    }
}

impl HotspotSettingsQuery {
    /// Takes the statistic's parameters from `params`.
    pub(crate) fn read(params: &mut Params) -> Result<Self, ApiError> {
        Ok(Self {
            k: params.take("k")?,
            kernel: params.take("kernel")?,
            value: params.take("value")?,
            permutations: params.take("permutations")?,
            alpha: params.take("alpha")?,
            adjust: params.take("adjust")?,
            sensitivity: params.take("sensitivity")?,
        })
    }

    /// The statistic's settings, with their defaults (checked by the analysis).
    pub(crate) fn settings(self) -> Result<HotspotSettings, ApiError> {
        Ok(HotspotSettings {
            k: self.k.unwrap_or(1),
            kernel: kernel_of(self.kernel.as_deref())?,
            measure: named_or_default("value", self.value)?,
            permutations: self.permutations.unwrap_or(0),
            alpha: self.alpha.unwrap_or(DEFAULT_ALPHA),
            adjustment: named_or_default("adjust", self.adjust)?,
        })
    }
}

/// The false-discovery rate when none is asked for.
const DEFAULT_ALPHA: f64 = 0.05;

/// The setting `key` names (what to count, what to adjust for), or its default when absent; 400
/// naming `key` for a name it does not know.
fn named_or_default<T: FromStr<Err = String> + Default>(
    key: &str,
    value: Option<String>,
) -> Result<T, ApiError> {
    value.map_or(Ok(T::default()), |value| {
        value
            .trim()
            .parse()
            .map_err(|err| ApiError::BadRequest(format!("`{key}`: {err}")))
    })
}

impl EmergingQuery {
    /// Takes the emerging analysis's parameters from `params`.
    pub(crate) fn read(params: &mut Params) -> Result<Self, ApiError> {
        Ok(Self {
            step: params.take("step")?,
            k: params.take("k")?,
            time_lag: params.take("time_lag")?,
            value: params.take("value")?,
            alpha: params.take("alpha")?,
            adjust: params.take("adjust")?,
        })
    }

    /// The emerging question about `grid` for a caller who may read the records within
    /// `scope`.
    pub(crate) fn question(
        self,
        grid: GridQuestion,
        scope: RecordScope,
    ) -> Result<EmergingQuestion, ApiError> {
        let step = match self.step.as_deref() {
            None | Some("month") => Step::Month,
            Some("week") => Step::Week,
            Some("quarter") => Step::Quarter,
            Some(other) => {
                return Err(ApiError::BadRequest(format!(
                    "`step`: `{other}` is not week, month or quarter"
                )));
            }
        };
        Ok(EmergingQuestion {
            grid,
            scope,
            step,
            k: self.k.unwrap_or(1),
            time_lag: self.time_lag.unwrap_or(1),
            measure: named_or_default("value", self.value)?,
            alpha: self.alpha.unwrap_or(DEFAULT_ALPHA),
            adjustment: named_or_default("adjust", self.adjust)?,
        })
    }
}

impl RegionalQuery {
    /// Takes the regional analysis's parameters from `params`.
    pub(crate) fn read(params: &mut Params) -> Result<Self, ApiError> {
        Ok(Self {
            resolution: params.take("resolution")?,
            from: params.take("from")?,
            to: params.take("to")?,
            format: params.take("format")?,
            k: params.take("k")?,
            kernel: params.take("kernel")?,
            value: params.take("value")?,
            permutations: params.take("permutations")?,
            alpha: params.take("alpha")?,
        })
    }

    /// The regional question for a caller who may read the partnership's records within
    /// `scope`, and the answer's format.
    pub(crate) fn question(
        self,
        request: &HttpRequest,
        scope: RecordScope,
    ) -> Result<(RegionalQuestion, Format), ApiError> {
        let (from, to) = period_of(self.from, self.to)?;
        let format = format_of(request, self.format.as_deref())?;
        // Permutations and weighted kernels test raw counts; otherwise the analysis is adjusted
        // for population like a partnership's own.
        let raw = self
            .permutations
            .is_some_and(|permutations| permutations > 0)
            || self
                .kernel
                .as_deref()
                .is_some_and(|kernel| kernel != "uniform");
        let settings = HotspotSettingsQuery {
            k: self.k,
            kernel: self.kernel,
            value: self.value,
            permutations: self.permutations,
            alpha: self.alpha,
            adjust: raw.then(|| Adjustment::None.as_str().to_owned()),
            sensitivity: None,
        }
        .settings()?;
        Ok((
            RegionalQuestion {
                resolution: resolution_of(self.resolution)?,
                from,
                to,
                scope,
                settings,
            },
            format,
        ))
    }
}

/// The comparison endpoint's query.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ComparisonQuery {
    /// A day of the first period; the comparison starts at that period's first day (default:
    /// four quarters or twelve months before `to`'s).
    pub from: Option<NaiveDate>,
    /// A day of the last period; the comparison ends on that period's last day, and a period
    /// not yet ended is left out (default: the last closed period).
    pub to: Option<NaiveDate>,
    /// `quarter` (default) or `month`.
    pub by: Option<String>,
    /// `neighbours` (default: the neighbour graph) or `comparators` (the imported comparator
    /// group).
    pub group: Option<String>,
}

impl ComparisonQuery {
    /// Takes the comparison's parameters from `params`.
    /// `to` is read first: when both days are out of range, the last is the one named.
    pub(crate) fn read(params: &mut Params) -> Result<Self, ApiError> {
        let to = params.take("to")?;
        Ok(Self {
            from: params.take("from")?,
            to,
            by: params.take("by")?,
            group: params.take("group")?,
        })
    }
}

/// The national export's query.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct ExportQuery {
    /// A calendar quarter, such as `2026-Q1`.
    pub period: String,
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

impl ExportQuery {
    /// Takes the export's parameters from `params`.
    pub(crate) fn read(params: &mut Params) -> Result<Self, ApiError> {
        Ok(Self {
            period: params.take("period")?.ok_or_else(|| {
                ApiError::BadRequest("`period` is required, such as 2026-Q1".to_owned())
            })?,
            format: params.take("format")?,
        })
    }
}

/// Whether `format` (`json`, the default, or `csv`) asks for CSV.
pub(crate) fn csv_wanted(format: Option<&str>) -> Result<bool, ApiError> {
    match format {
        None | Some("json") => Ok(false),
        Some("csv") => Ok(true),
        Some(other) => Err(ApiError::BadRequest(format!(
            "`format`: `{other}` is not json or csv"
        ))),
    }
}

/// The query of an answer offered as JSON or CSV.
#[derive(Debug, IntoParams)]
#[into_params(parameter_in = Query)]
pub(crate) struct FormatQuery {
    /// `json` (default) or `csv`.
    pub format: Option<String>,
}

impl FormatQuery {
    /// Takes `format` from `params`.
    pub(crate) fn read(params: &mut Params) -> Result<Self, ApiError> {
        Ok(Self {
            format: params.take("format")?,
        })
    }
}
