//! The query string of the analysis endpoints, read key by key into the typed questions of
//! [`atlas_app::analysis`]: an unknown or repeated key is an error that names it (a misspelt
//! filter must not silently widen the answer).

use std::any::{Any, TypeId};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Display;
use std::str::FromStr;

use actix_web::http::header::ACCEPT;
use actix_web::{HttpRequest, web};
use atlas_analytics::gistar::Kernel;
use atlas_analytics::grid::{Filter, IndicatorMatch};
use atlas_app::analysis::{GridQuestion, HotspotSettings, Measure};
use atlas_domain::StoredResolution;
use chrono::NaiveDate;

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

    pub(crate) fn take_set<T: FromStr + Ord>(&mut self, key: &str) -> Result<BTreeSet<T>, ApiError>
    where
        T::Err: Display,
    {
        self.0.remove(key).map_or_else(
            || Ok(BTreeSet::new()),
            |value| {
                value
                    .split(',')
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

    /// Takes `format`: `json` (the default) or `csv`; true for CSV.
    pub(crate) fn csv_wanted(&mut self) -> Result<bool, ApiError> {
        match self.take::<String>("format")?.as_deref() {
            None | Some("json") => Ok(false),
            Some("csv") => Ok(true),
            Some(other) => Err(ApiError::BadRequest(format!(
                "`format`: `{other}` is not json or csv"
            ))),
        }
    }

    pub(crate) fn finish(self, known: &[&str]) -> Result<(), ApiError> {
        match self.0.keys().next() {
            None => Ok(()),
            Some(key) => Err(ApiError::BadRequest(format!(
                "unknown parameter `{key}`; this endpoint takes {}",
                known.join(", ")
            ))),
        }
    }
}

/// The filter and grid parameters shared by the grid and hotspot endpoints.
pub(crate) const GRID_PARAMETERS: [&str; 11] = [
    "resolution",
    "from",
    "to",
    "agency_kinds",
    "record_kinds",
    "indicators",
    "indicator_match",
    "age_bands",
    "sexes",
    "location_roles",
    "format",
];

/// The statistic's parameters of the hotspot endpoints.
pub(crate) const HOTSPOT_PARAMETERS: [&str; 5] = ["k", "kernel", "value", "permutations", "alpha"];

/// Reads the grid part of a question, and the answer's format (`format`, or GeoJSON when the
/// `Accept` header asks for it).
pub(crate) fn grid_question(
    request: &HttpRequest,
    params: &mut Params,
) -> Result<(GridQuestion, Format), ApiError> {
    let resolution = StoredResolution::try_from(params.take::<u8>("resolution")?.unwrap_or(8))
        .map_err(|err| ApiError::BadRequest(format!("`resolution`: {err}")))?;
    let from: Option<NaiveDate> = params.take("from")?;
    let to: Option<NaiveDate> = params.take("to")?;
    if let (Some(from), Some(to)) = (from, to)
        && to < from
    {
        return Err(ApiError::BadRequest("`to` is before `from`".to_owned()));
    }
    let indicator_match = match params.take::<String>("indicator_match")?.as_deref() {
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
        agency_kinds: params.take_set("agency_kinds")?,
        record_kinds: params.take_set("record_kinds")?,
        indicators: params
            .take_set::<atlas_domain::Indicator>("indicators")?
            .into_iter()
            .collect(),
        indicator_match,
        age_bands: params.take_set("age_bands")?,
        sexes: params.take_set("sexes")?,
        location_roles: params.take_set("location_roles")?,
    };
    let wants_geojson = request
        .headers()
        .get(ACCEPT)
        .and_then(|accept| accept.to_str().ok())
        .is_some_and(|accept| accept.contains(GEO_JSON));
    let format = match params.take::<String>("format")?.as_deref() {
        None if wants_geojson => Format::GeoJson,
        None | Some("json") => Format::Json,
        Some("geojson") => Format::GeoJson,
        Some("csv") => Format::Csv,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`format`: `{other}` is not json, geojson or csv"
            )));
        }
    };
    Ok((GridQuestion { resolution, filter }, format))
}

/// `k`: the k-ring size (default 1).
pub(crate) fn ring_size(params: &mut Params) -> Result<u32, ApiError> {
    Ok(params.take::<u32>("k")?.unwrap_or(1))
}

/// `value`: distinct subjects (children: the default) or records.
pub(crate) fn measure(params: &mut Params) -> Result<Measure, ApiError> {
    Ok(params.take::<Measure>("value")?.unwrap_or_default())
}

/// `alpha`: the false-discovery rate (default 0.05).
pub(crate) fn level(params: &mut Params) -> Result<f64, ApiError> {
    Ok(params.take::<f64>("alpha")?.unwrap_or(0.05))
}

/// The statistic's settings of a hotspot question: `k`, `kernel`, `value`, `permutations`
/// and `alpha`, with their defaults (checked by the analysis).
pub(crate) fn hotspot_settings(params: &mut Params) -> Result<HotspotSettings, ApiError> {
    let k = ring_size(params)?;
    let kernel = match params.take::<String>("kernel")?.as_deref() {
        None | Some("uniform") => Kernel::Uniform,
        Some("triangular") => Kernel::Triangular,
        Some("gaussian") => Kernel::Gaussian,
        Some(other) => {
            return Err(ApiError::BadRequest(format!(
                "`kernel`: `{other}` is not uniform, triangular or gaussian"
            )));
        }
    };
    Ok(HotspotSettings {
        k,
        kernel,
        measure: measure(params)?,
        permutations: params.take::<u32>("permutations")?.unwrap_or(0),
        alpha: level(params)?,
    })
}
