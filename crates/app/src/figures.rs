//! How answers show figures: a count exact or as the publication gate published it, and the
//! child population a rate is built on, with their OpenAPI schemas.

use atlas_analytics::gate::Shown;
use atlas_store::populations::PartnershipPopulation;
use serde::Serialize;
use utoipa::openapi::RefOr;
use utoipa::openapi::schema::{ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::{PartialSchema, ToSchema};

/// A count as an answer shows it: exact where the caller may see its own partnership's
/// figures, otherwise as the publication gate published it (a number, or `"c"` where
/// suppressed).
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(untagged)]
pub enum Figure {
    /// The partnership's own count.
    Exact(u32),
    /// A published count.
    Gated(Shown),
}

impl PartialSchema for Figure {
    fn schema() -> RefOr<Schema> {
        OneOfBuilder::new()
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .minimum(Some(0)),
            )
            .item(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .enum_values(Some(["c"])),
            )
            .description(Some(
                "A count: a number, or \"c\" where the publication gate suppressed it",
            ))
            .into()
    }
}

impl ToSchema for Figure {}

/// The schema of figures by name, each a [`Figure`] or null (no data, or not shared).
pub fn figures_by_name() -> utoipa::openapi::Object {
    use utoipa::openapi::schema::AdditionalProperties;
    let figure_or_null = OneOfBuilder::new()
        .item(utoipa::openapi::Ref::from_schema_name("Figure"))
        .item(ObjectBuilder::new().schema_type(Type::Null))
        .build();
    ObjectBuilder::new()
        .schema_type(Type::Object)
        .additional_properties(Some(AdditionalProperties::RefOr(RefOr::T(Schema::OneOf(
            figure_or_null,
        )))))
        .build()
}

/// The child population a rate is built on.
#[derive(Debug, Serialize, ToSchema)]
pub struct PopulationView {
    /// The year of the estimate.
    pub year: i16,
    /// Children aged 0 to 17.
    pub children_0_17: i64,
    /// Whether any of the figures summed is an approximation rather than an ONS estimate.
    pub approximate: bool,
    /// Where the figures come from.
    pub source: String,
}

impl From<&PartnershipPopulation> for PopulationView {
    fn from(population: &PartnershipPopulation) -> Self {
        Self {
            year: population.year,
            children_0_17: population.population_0_17,
            approximate: population.approximate,
            source: population.source.clone(),
        }
    }
}
