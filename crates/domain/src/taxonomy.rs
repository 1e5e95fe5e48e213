//! The closed vocabularies of Atlas: agency kinds, record kinds, location roles, risk indicators,
//! age bands and sex. Each is an enum whose snake_case (or published) name is used in files,
//! URLs and the database; docs/extract-format.md lists them for agencies.

use std::fmt;
use std::str::FromStr;

/// Declares a vocabulary: the enum, its names, parsing that forgives case and `-`/space for `_`,
/// and an error that lists the choices.
macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        $name:ident, $error:ident, $noun:literal {
            $($(#[$variant_meta:meta])* $variant:ident => $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(
            Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash,
            serde::Serialize, serde::Deserialize,
        )]
        pub enum $name {
            $($(#[$variant_meta])* #[serde(rename = $text)] $variant),+
        }

        // Written by hand rather than derived: the derive does not see the names given to
        // serde inside this macro and would document the variants' Rust names.
        #[cfg(feature = "openapi")]
        impl utoipa::PartialSchema for $name {
            fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
                utoipa::openapi::ObjectBuilder::new()
                    .schema_type(utoipa::openapi::schema::Type::String)
                    .description(Some(concat!("A ", $noun, ", by the name used in files, URLs and the database")))
                    .enum_values(Some(Self::names()))
                    .into()
            }
        }

        #[cfg(feature = "openapi")]
        impl utoipa::ToSchema for $name {}

        #[doc = concat!("The input named no known ", $noun, ".")]
        #[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
        #[error("unknown {noun} `{0}`: expected one of {list}", noun = $noun, list = $name::names().join(", "))]
        pub struct $error(pub String);

        impl $name {
            /// Every value, in a stable order.
            pub const ALL: &'static [Self] = &[$(Self::$variant),+];

            /// The name used in files, URLs and the database.
            #[must_use]
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(Self::$variant => $text),+
                }
            }

            /// Every name, for messages and documentation.
            #[must_use]
            pub fn names() -> Vec<&'static str> {
                Self::ALL.iter().map(|value| value.as_str()).collect()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.pad(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = $error;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                lookup(Self::ALL, s, |value| value.as_str())
                    .ok_or_else(|| $error(s.chars().take(40).collect()))
            }
        }

        impl TryFrom<String> for $name {
            type Error = $error;

            fn try_from(name: String) -> Result<Self, Self::Error> {
                name.parse()
            }
        }
    };
}

/// Finds the value whose name matches `input`, ignoring case and surrounding space, and taking
/// `-` or a space for `_`.
fn lookup<T: Copy>(all: &[T], input: &str, name: impl Fn(T) -> &'static str) -> Option<T> {
    let trimmed = input.trim();
    let underscored = trimmed.replace(['-', ' '], "_");
    all.iter().copied().find(|value| {
        let name = name(*value);
        name.eq_ignore_ascii_case(trimmed) || name.eq_ignore_ascii_case(&underscored)
    })
}

vocabulary! {
    /// The kind of organisation an agency is: the agencies named in statutory guidance on
    /// multi-agency safeguarding.
    AgencyKind, UnknownAgencyKind, "agency kind" {
        /// A police force.
        Police => "police",
        /// Children's social care of a local authority.
        SocialCare => "social_care",
        /// An NHS trust, integrated care board or GP practice.
        Health => "health",
        /// A school, college or local-authority education service.
        Education => "education",
        /// A youth offending team.
        Yot => "yot",
        /// The probation service.
        Probation => "probation",
        /// A housing provider or housing department.
        Housing => "housing",
        /// Youth services.
        YouthServices => "youth_services",
        /// The voluntary and community sector.
        Vcs => "vcs",
    }
}

vocabulary! {
    /// What kind of event a case record is.
    RecordKind, UnknownRecordKind, "record kind" {
        /// A reported crime or incident.
        Incident => "incident",
        /// A referral to children's social care or another service.
        Referral => "referral",
        /// An episode of a child going missing.
        MissingEpisode => "missing_episode",
        /// An assessment (for example a CSE risk assessment).
        Assessment => "assessment",
        /// Police or partner intelligence.
        Intelligence => "intelligence",
        /// An attendance at a health service (emergency department, sexual health clinic).
        HealthAttendance => "health_attendance",
        /// A concern raised by a school or college.
        EducationConcern => "education_concern",
    }
}

vocabulary! {
    /// What the recorded location is to the event.
    LocationRole, UnknownLocationRole, "location role" {
        /// The child's home or placement.
        Home => "home",
        /// Where the incident happened (the default).
        Incident => "incident",
        /// A place where the child met someone of concern.
        Meeting => "meeting",
        /// The child's school or college.
        School => "school",
        /// Any other place.
        Other => "other",
    }
}

vocabulary! {
    /// A risk indicator of child sexual exploitation, after the indicators used in CSE risk
    /// assessment tools.
    Indicator, UnknownIndicator, "indicator" {
        /// Going missing from home, care or school.
        Missing => "missing",
        /// Alcohol or drug misuse.
        SubstanceMisuse => "substance_misuse",
        /// Association with older people.
        OlderAssociate => "older_associate",
        /// Unexplained gifts, money or phones.
        GiftsMoney => "gifts_money",
        /// Contact with unknown adults online.
        OnlineContact => "online_contact",
        /// Seen in hotels, taxis or cars of unknown adults.
        HotelTaxi => "hotel_taxi",
        /// Absence from school.
        SchoolAbsence => "school_absence",
        /// Sexual health concerns (infections, pregnancy, termination).
        SexualHealth => "sexual_health",
        /// Self-harm.
        SelfHarm => "self_harm",
        /// Knows a peer who is exploited.
        KnownPeerExploited => "known_peer_exploited",
    }
}

vocabulary! {
    /// The age band of the child at the time of the event, as published in children's statistics.
    AgeBand, UnknownAgeBand, "age band" {
        /// Under 10.
        UnderTen => "0-9",
        /// 10 to 12.
        TenToTwelve => "10-12",
        /// 13 to 15.
        ThirteenToFifteen => "13-15",
        /// 16 and 17.
        SixteenToSeventeen => "16-17",
        /// Care leavers and young adults, 18 to 25.
        EighteenToTwentyFive => "18-25",
    }
}

impl AgeBand {
    /// The oldest age a record may give.
    pub const MAX_AGE: u8 = 25;

    /// The band of an age in whole years, or `None` above [`AgeBand::MAX_AGE`].
    #[must_use]
    pub const fn of_age(age: u8) -> Option<Self> {
        match age {
            0..=9 => Some(Self::UnderTen),
            10..=12 => Some(Self::TenToTwelve),
            13..=15 => Some(Self::ThirteenToFifteen),
            16..=17 => Some(Self::SixteenToSeventeen),
            18..=Self::MAX_AGE => Some(Self::EighteenToTwentyFive),
            _ => None,
        }
    }
}

vocabulary! {
    /// Sex as recorded by the agency.
    Sex, UnknownSex, "sex" {
        /// Female.
        Female => "F",
        /// Male.
        Male => "M",
        /// Another sex or gender recorded.
        Other => "X",
        /// Not known or not recorded.
        Unknown => "U",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[cfg(feature = "openapi")]
    #[test]
    fn the_openapi_schema_lists_the_names_the_json_uses() {
        use utoipa::PartialSchema as _;
        let schema = serde_json::to_value(AgencyKind::schema()).unwrap();
        let json: Vec<serde_json::Value> = AgencyKind::ALL
            .iter()
            .map(|kind| serde_json::to_value(kind).unwrap())
            .collect();
        assert_eq!(schema["enum"], serde_json::Value::Array(json));
        assert_eq!(schema["type"], "string");
    }

    #[test]
    fn names_round_trip_through_text_and_json() {
        fn check<T>(all: &[T])
        where
            T: Copy + PartialEq + fmt::Debug + fmt::Display + FromStr + serde::Serialize,
            T::Err: fmt::Debug,
        {
            for value in all {
                assert_eq!(value.to_string().parse::<T>().unwrap(), *value);
                assert_eq!(
                    serde_json::to_string(value).unwrap(),
                    format!("\"{value}\"")
                );
            }
        }
        check(AgencyKind::ALL);
        check(RecordKind::ALL);
        check(LocationRole::ALL);
        check(Indicator::ALL);
        check(AgeBand::ALL);
        check(Sex::ALL);
    }

    #[test]
    fn parsing_forgives_case_and_separators() {
        assert_eq!(
            "Social Care".parse::<AgencyKind>().unwrap(),
            AgencyKind::SocialCare
        );
        assert_eq!(
            "youth-services".parse::<AgencyKind>().unwrap(),
            AgencyKind::YouthServices
        );
        assert_eq!(
            "Missing Episode".parse::<RecordKind>().unwrap(),
            RecordKind::MissingEpisode
        );
        assert_eq!(" f ".parse::<Sex>().unwrap(), Sex::Female);
        assert_eq!(
            "16-17".parse::<AgeBand>().unwrap(),
            AgeBand::SixteenToSeventeen
        );
    }

    #[test]
    fn unknown_values_list_the_choices() {
        let err = "fire".parse::<AgencyKind>().unwrap_err().to_string();
        assert_eq!(
            err,
            "unknown agency kind `fire`: expected one of police, social_care, health, education, \
             yot, probation, housing, youth_services, vcs"
        );
        let err = "knife".parse::<Indicator>().unwrap_err().to_string();
        assert!(
            err.starts_with("unknown indicator `knife`: expected one of missing,"),
            "{err}"
        );
    }

    #[test]
    fn ages_fall_into_the_published_bands() {
        assert_eq!(AgeBand::of_age(0), Some(AgeBand::UnderTen));
        assert_eq!(AgeBand::of_age(12), Some(AgeBand::TenToTwelve));
        assert_eq!(AgeBand::of_age(15), Some(AgeBand::ThirteenToFifteen));
        assert_eq!(AgeBand::of_age(17), Some(AgeBand::SixteenToSeventeen));
        assert_eq!(AgeBand::of_age(25), Some(AgeBand::EighteenToTwentyFive));
        assert_eq!(AgeBand::of_age(26), None);
    }

    proptest! {
        #[test]
        fn every_age_up_to_the_maximum_has_the_band_that_contains_it(age in 0..=AgeBand::MAX_AGE) {
            let band = AgeBand::of_age(age).unwrap();
            let (low, high) = band.as_str().split_once('-').unwrap();
            prop_assert!((low.parse::<u8>().unwrap()..=high.parse::<u8>().unwrap()).contains(&age));
        }

        #[test]
        fn parsing_never_panics(input in ".*") {
            let _ = input.parse::<AgencyKind>();
            let _ = input.parse::<Indicator>();
        }
    }
}
