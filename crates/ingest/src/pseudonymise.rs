//! Agency-side pseudonymisation: a raw export that still holds identifiers becomes a canonical
//! extract whose `subject` is a keyed hash, with every direct identifier and free text dropped.
//!
//! The pseudonym is HMAC-SHA256, under the partnership's linkage key, of the child's normalised
//! surname, forename and date of birth — identifiers every agency holds, so the same child gets
//! the same pseudonym from police, social care, health and schools. A row without them but with
//! a valid NHS number is keyed on the NHS number instead (linking only with other NHS-numbered
//! rows). Rows with neither are skipped and reported. Streams: one row in memory at a time.
//!
//! The header is checked against the profile before any row is written: a column the profile
//! maps must be in the export, and the export must give every field an extract needs (the
//! identifiers of the pseudonym, `record_kind`, `occurred_on` and a location), so a profile that
//! does not fit the export fails at once, naming the column, instead of writing nothing or
//! dropping a field.

use std::collections::BTreeMap;
use std::io::{Read, Write};

use chrono::NaiveDate;
use serde::Deserialize;
use unicode_normalization::UnicodeNormalization as _;
use unicode_normalization::char::is_combining_mark;

use crate::extract::Column;
use crate::identifiers::nhs_number_is_valid;
use crate::pseudonym::PseudonymKey;

/// The identifying fields a raw export may hold; they are used for the pseudonym and dropped.
const IDENTIFIER_FIELDS: [&str; 4] = ["forename", "surname", "date_of_birth", "nhs_number"];

/// How an agency's export maps onto the canonical extract (a file in `config/profiles/`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// A description of the system and export the profile is for.
    pub name: String,
    /// Target field -> the export's column. Targets are canonical columns (other than
    /// `subject`) and the identifier fields `forename`, `surname`, `date_of_birth`, `nhs_number`.
    /// A target not listed is read from the column of the same name, if any. Every column
    /// listed must be in the export's header.
    #[serde(default)]
    pub columns: BTreeMap<String, String>,
    /// Target field -> the export's value -> the canonical value (matched ignoring case).
    #[serde(default)]
    pub values: BTreeMap<String, BTreeMap<String, String>>,
    /// Target field -> chrono format of its dates (for example `%d/%m/%Y`); ISO otherwise.
    #[serde(default)]
    pub date_formats: BTreeMap<String, String>,
    /// Target field -> the value to use when the export has no such column or leaves it empty
    /// (for example `location_role = "home"` for an export of home addresses).
    #[serde(default)]
    pub defaults: BTreeMap<String, String>,
    /// What separates indicators in the export (default `;`).
    #[serde(default)]
    pub indicator_separator: Option<String>,
}

/// Why pseudonymisation stopped.
#[derive(Debug, thiserror::Error)]
pub enum PseudonymiseError {
    /// The profile is unusable.
    #[error("profile: {0}")]
    Profile(String),
    /// The export cannot be read or is not a CSV with a header.
    #[error("the export could not be read: {0}")]
    Read(String),
    /// The export's header lacks a column the profile maps, or anything to give a field every
    /// extract needs.
    #[error("{0}")]
    Header(String),
    /// The output cannot be written.
    #[error("the extract could not be written: {0}")]
    Write(String),
}

/// What pseudonymisation did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// Rows read.
    pub rows_read: u64,
    /// Rows written.
    pub rows_written: u64,
    /// Rows keyed on the NHS number for want of names and date of birth.
    pub keyed_on_nhs_number: u64,
    /// Skipped rows (row number, reason); the first 1,000 are kept.
    pub skipped: Vec<(u64, String)>,
    /// Number of skipped rows.
    pub rows_skipped: u64,
    /// Export columns that were dropped (identifiers, free text, anything unmapped).
    pub dropped_columns: Vec<String>,
}

impl Profile {
    /// Parses a profile from TOML and checks its targets.
    ///
    /// # Errors
    /// [`PseudonymiseError::Profile`] naming the problem.
    pub fn from_toml(text: &str) -> Result<Self, PseudonymiseError> {
        let profile: Self =
            toml::from_str(text).map_err(|err| PseudonymiseError::Profile(err.to_string()))?;
        let known =
            |target: &str| target_column(target).is_some() || IDENTIFIER_FIELDS.contains(&target);
        for target in profile
            .columns
            .keys()
            .chain(profile.values.keys())
            .chain(profile.date_formats.keys())
        {
            if !known(target) {
                return Err(PseudonymiseError::Profile(format!(
                    "`{target}` is not a canonical field or identifier"
                )));
            }
        }
        if let Some(target) = profile
            .defaults
            .keys()
            .find(|target| target_column(target).is_none())
        {
            return Err(PseudonymiseError::Profile(format!(
                "`{target}` is not a canonical field, so it cannot have a default"
            )));
        }
        Ok(profile)
    }

    fn source_for<'a>(&'a self, target: &'a str) -> &'a str {
        self.columns.get(target).map_or(target, String::as_str)
    }

    fn map_value<'v>(&'v self, target: &str, value: &'v str) -> &'v str {
        self.values
            .get(target)
            .and_then(|map| {
                map.iter()
                    .find(|(from, _)| from.eq_ignore_ascii_case(value))
                    .map(|(_, to)| to.as_str())
            })
            .unwrap_or(value)
    }

    fn date(&self, target: &str, value: &str) -> Option<NaiveDate> {
        match self.date_formats.get(target) {
            Some(format) => NaiveDate::parse_from_str(value, format).ok(),
            None => NaiveDate::parse_from_str(value, "%Y-%m-%d")
                .or_else(|_| NaiveDate::parse_from_str(value, "%d/%m/%Y"))
                .ok(),
        }
    }
}

fn target_column(target: &str) -> Option<Column> {
    Column::from_header(target).filter(|column| *column != Column::Subject)
}

/// Folds a name for matching: accents removed, case folded, and everything but letters and
/// digits dropped (`Zoë O'Brien-Smith` -> `zoeobriensmith`).
#[must_use]
pub fn normalise_name(name: &str) -> String {
    name.nfkd()
        .filter(|c| !is_combining_mark(*c))
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Pseudonymises a raw CSV export into a canonical CSV extract.
///
/// # Errors
/// [`PseudonymiseError`] when the export or output fails; bad rows are skipped, not errors.
pub fn pseudonymise(
    input: impl Read,
    output: impl Write,
    key: &PseudonymKey,
    profile: &Profile,
) -> Result<Summary, PseudonymiseError> {
    let mut reader = csv::ReaderBuilder::new().flexible(true).from_reader(input);
    let headers: Vec<String> = reader
        .headers()
        .map_err(|err| PseudonymiseError::Read(err.to_string()))?
        .iter()
        .map(|header| header.trim().trim_start_matches('\u{feff}').to_owned())
        .collect();
    let Layout {
        outputs,
        identifiers,
        dropped_columns,
    } = layout(&headers, profile)?;
    let mut summary = Summary {
        dropped_columns,
        ..Summary::default()
    };

    let mut writer = csv::Writer::from_writer(output);
    let write_error = |err: csv::Error| PseudonymiseError::Write(err.to_string());
    let mut header = vec![Column::Subject.name()];
    header.extend(outputs.iter().map(|(column, _)| column.name()));
    writer.write_record(&header).map_err(write_error)?;

    let separator = profile.indicator_separator.as_deref().unwrap_or(";");
    let mut record = csv::StringRecord::new();
    while reader
        .read_record(&mut record)
        .map_err(|err| PseudonymiseError::Read(err.to_string()))?
    {
        summary.rows_read += 1;
        let row = record
            .position()
            .map_or(summary.rows_read + 1, csv::Position::line);
        let field = |index: Option<usize>| {
            index
                .and_then(|index| record.get(index))
                .map(str::trim)
                .filter(|value| !value.is_empty())
        };
        let subject = match link_key(
            profile,
            &identifiers
                .iter()
                .map(|index| field(*index))
                .collect::<Vec<_>>(),
        ) {
            Ok((material, by_nhs)) => {
                summary.keyed_on_nhs_number += u64::from(by_nhs);
                hex::encode(key.sign(material.as_bytes()))
            }
            Err(reason) => {
                summary.rows_skipped += 1;
                if summary.skipped.len() < 1_000 {
                    summary.skipped.push((row, reason));
                }
                continue;
            }
        };
        let mut out = vec![subject];
        for (column, index) in &outputs {
            let value = field(*index)
                .or_else(|| profile.defaults.get(column.name()).map(String::as_str))
                .unwrap_or_default();
            out.push(canonical_value(profile, *column, value, separator));
        }
        writer.write_record(&out).map_err(write_error)?;
        summary.rows_written += 1;
    }
    writer
        .flush()
        .map_err(|err| PseudonymiseError::Write(err.to_string()))?;
    Ok(summary)
}

/// Where each field of one export comes from.
struct Layout {
    /// The canonical columns written, each with its column in the export (`None`: the
    /// profile's default).
    outputs: Vec<(Column, Option<usize>)>,
    /// The export's columns of [`IDENTIFIER_FIELDS`], in that order.
    identifiers: Vec<Option<usize>>,
    /// The export's columns that are not written.
    dropped_columns: Vec<String>,
}

/// Checks the export's header against the profile and lays out where each field comes from.
///
/// # Errors
/// [`PseudonymiseError::Header`] naming the first column the profile maps that the header
/// lacks, or the field nothing gives: the subject's identifiers, `record_kind`, `occurred_on` or
/// a location.
fn layout(headers: &[String], profile: &Profile) -> Result<Layout, PseudonymiseError> {
    let header_error = |message: String| Err(PseudonymiseError::Header(message));
    let find = |name: &str| {
        headers
            .iter()
            .position(|header| header.eq_ignore_ascii_case(name))
    };
    let unmapped: Vec<(&String, &String)> = profile
        .columns
        .iter()
        .filter(|(_, source)| find(source).is_none())
        .collect();
    if let Some((target, source)) = unmapped.first() {
        let others = match unmapped.len() {
            1 => String::new(),
            count => format!(
                " (nor {} more of the columns it maps: is it this export's profile?)",
                count - 1
            ),
        };
        return header_error(format!(
            "the export has no column `{source}` that the profile maps to {target}{others}"
        ));
    }
    let position = |target: &str| find(profile.source_for(target));
    let gives = |column: Column| {
        position(column.name()).is_some() || profile.defaults.contains_key(column.name())
    };

    let identifiers: Vec<Option<usize>> = IDENTIFIER_FIELDS
        .iter()
        .map(|field| position(field))
        .collect();
    let linkable = matches!(
        identifiers.as_slice(),
        [Some(_), Some(_), Some(_), _] | [.., Some(_)]
    );
    if !linkable {
        let missing: Vec<&str> = IDENTIFIER_FIELDS
            .iter()
            .zip(&identifiers)
            .filter(|(_, index)| index.is_none())
            .map(|(field, _)| *field)
            .collect();
        return header_error(format!(
            "nothing gives the subject: its pseudonym needs forename, surname and date_of_birth, \
             or nhs_number, and the export has no column for {}",
            missing.join(", ")
        ));
    }
    if let Some(column) = Column::REQUIRED
        .into_iter()
        .find(|column| *column != Column::Subject && !gives(*column))
    {
        let name = column.name();
        return header_error(format!(
            "nothing gives {name}, which every extract needs: the export has no column `{name}` \
             and the profile neither maps one to it nor gives it a default"
        ));
    }
    for (first, second) in [
        (Column::Lat, Column::Lon),
        (Column::Easting, Column::Northing),
    ] {
        if gives(first) != gives(second) {
            let (given, missing) = if gives(first) {
                (first, second)
            } else {
                (second, first)
            };
            return header_error(format!(
                "the export gives {} but nothing gives {}: a location needs both",
                given.name(),
                missing.name()
            ));
        }
    }
    if ![Column::Lat, Column::Easting, Column::Postcode, Column::H3]
        .into_iter()
        .any(gives)
    {
        return header_error(
            "nothing gives a location, which every extract needs: map lat and lon, easting and \
             northing, postcode or h3"
                .to_owned(),
        );
    }

    let outputs: Vec<(Column, Option<usize>)> = Column::ALL
        .into_iter()
        .filter(|column| *column != Column::Subject && gives(*column))
        .map(|column| (column, position(column.name())))
        .collect();
    let used: Vec<usize> = outputs.iter().filter_map(|(_, index)| *index).collect();
    let dropped_columns = headers
        .iter()
        .enumerate()
        .filter(|(index, _)| !used.contains(index))
        .map(|(_, name)| name.clone())
        .collect();
    Ok(Layout {
        outputs,
        identifiers,
        dropped_columns,
    })
}

/// The text that is keyed: names and date of birth, or else the NHS number.
fn link_key(profile: &Profile, identifiers: &[Option<&str>]) -> Result<(String, bool), String> {
    let [forename, surname, date_of_birth, nhs_number] = identifiers else {
        return Err("internal: wrong identifier count".to_owned());
    };
    let nhs = nhs_number.map(|number| {
        number
            .chars()
            .filter(char::is_ascii_digit)
            .collect::<String>()
    });
    if let Some(number) = &nhs
        && !nhs_number_is_valid(number)
    {
        return Err("the NHS number fails its modulus-11 check".to_owned());
    }
    let names = forename
        .map(normalise_name)
        .filter(|name| !name.is_empty())
        .zip(surname.map(normalise_name).filter(|name| !name.is_empty()));
    match (names, date_of_birth) {
        (Some((forename, surname)), Some(date)) => {
            let date = profile
                .date("date_of_birth", date)
                .ok_or_else(|| "the date of birth is not a date".to_owned())?;
            Ok((format!("person:{surname}|{forename}|{date}"), false))
        }
        _ => match nhs {
            Some(number) => Ok((format!("nhs:{number}"), true)),
            None => Err(
                "cannot link: needs forename, surname and date of birth, or an NHS number"
                    .to_owned(),
            ),
        },
    }
}

fn canonical_value(profile: &Profile, column: Column, value: &str, separator: &str) -> String {
    match column {
        Column::Indicators => value
            .split(separator)
            .map(str::trim)
            .filter(|code| !code.is_empty())
            .map(|code| profile.map_value(column.name(), code))
            .collect::<Vec<_>>()
            .join(";"),
        Column::OccurredOn => {
            let mapped = profile.map_value(column.name(), value);
            profile
                .date(column.name(), mapped)
                .map_or_else(|| mapped.to_owned(), |date| date.to_string())
        }
        _ => profile.map_value(column.name(), value).to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> PseudonymKey {
        PseudonymKey::from_hex(&"42".repeat(32)).unwrap()
    }

    fn run(input: &str, profile: &Profile) -> (String, Summary) {
        let mut output = Vec::new();
        let summary = pseudonymise(input.as_bytes(), &mut output, &key(), profile).unwrap();
        (String::from_utf8(output).unwrap(), summary)
    }

    #[test]
    fn names_are_folded_for_matching() {
        assert_eq!(normalise_name("Zoë O'Brien-Smith"), "zoeobriensmith");
        assert_eq!(normalise_name("  JOSÉ  "), "jose");
        assert_eq!(normalise_name("Ødegård"), "ødegard");
    }

    #[test]
    fn the_same_child_links_across_differently_written_exports() {
        let police = "Forename,Surname,Date_of_Birth,record_kind,occurred_on,lat,lon,notes\n\
                      Zoë,O'Brien,05/03/2010,incident,2024-02-01,53.8,-3.0,seen with older males\n";
        let health = "forename,surname,date_of_birth,nhs_number,record_kind,occurred_on,postcode\n\
                      ZOE,OBRIEN,2010-03-05,943 476 5919,health_attendance,2024-02-03,FY1 1AA\n";
        let (police_out, police_summary) = run(police, &Profile::default());
        let (health_out, _) = run(health, &Profile::default());
        let subject = |text: &str| {
            text.lines()
                .nth(1)
                .unwrap()
                .split(',')
                .next()
                .unwrap()
                .to_owned()
        };
        assert_eq!(subject(&police_out), subject(&health_out));
        assert_eq!(subject(&police_out).len(), 64);
        assert_eq!(
            police_out.lines().next().unwrap(),
            "subject,record_kind,occurred_on,lat,lon"
        );
        assert_eq!(
            police_summary.dropped_columns,
            ["Forename", "Surname", "Date_of_Birth", "notes"]
        );
        for identifier in ["Zo", "Brien", "2010", "older males", "5919"] {
            assert!(
                !police_out.contains(identifier) && !health_out.contains(identifier),
                "{identifier} leaked"
            );
        }
    }

    #[test]
    fn rows_that_cannot_be_linked_are_skipped_and_reported() {
        let input = "forename,surname,date_of_birth,nhs_number,record_kind,occurred_on,lat,lon\n\
                     Ana,Smith,2011-01-01,,incident,2024-01-01,53.8,-3.0\n\
                     ,,,9434765919,incident,2024-01-01,53.8,-3.0\n\
                     Ana,,,,incident,2024-01-01,53.8,-3.0\n\
                     Ana,Smith,2011-01-01,9434765918,incident,2024-01-01,53.8,-3.0\n\
                     Ana,Smith,yesterday,,incident,2024-01-01,53.8,-3.0\n";
        let (output, summary) = run(input, &Profile::default());
        assert_eq!(
            (
                summary.rows_read,
                summary.rows_written,
                summary.rows_skipped
            ),
            (5, 2, 3)
        );
        assert_eq!(summary.keyed_on_nhs_number, 1);
        assert_eq!(
            summary.skipped,
            vec![
                (
                    4,
                    "cannot link: needs forename, surname and date of birth, or an NHS number"
                        .to_owned()
                ),
                (5, "the NHS number fails its modulus-11 check".to_owned()),
                (6, "the date of birth is not a date".to_owned()),
            ]
        );
        assert_eq!(output.lines().count(), 3);
    }

    #[test]
    fn a_profile_maps_columns_codes_and_dates() {
        let profile = Profile::from_toml(
            r#"
            name = "test export"
            indicator_separator = "|"
            [columns]
            forename = "First"
            surname = "Last"
            date_of_birth = "Born"
            record_kind = "Type"
            occurred_on = "When"
            easting = "X"
            northing = "Y"
            indicators = "Flags"
            [values.record_kind]
            "Missing Person" = "missing_episode"
            [values.indicators]
            MISS = "missing"
            GIFT = "gifts_money"
            [date_formats]
            occurred_on = "%d.%m.%Y"
            date_of_birth = "%Y%m%d"
            "#,
        )
        .unwrap();
        let input = "First,Last,Born,Type,When,X,Y,Flags\nAna,Smith,20110101,missing person,05.03.2024,331910,436189,MISS|gift\n";
        let (output, summary) = run(input, &profile);
        assert_eq!(summary.rows_written, 1);
        let row: Vec<&str> = output.lines().nth(1).unwrap().split(',').collect();
        assert_eq!(
            output.lines().next().unwrap(),
            "subject,record_kind,occurred_on,easting,northing,indicators"
        );
        assert_eq!(
            &row[1..],
            [
                "missing_episode",
                "2024-03-05",
                "331910",
                "436189",
                "missing;gifts_money"
            ]
        );
        let (plain, _) = run(
            "forename,surname,date_of_birth,record_kind,occurred_on,lat,lon\nAna,Smith,2011-01-01,incident,2024-01-01,1,1\n",
            &Profile::default(),
        );
        assert_eq!(
            plain.lines().nth(1).unwrap().split(',').next(),
            Some(row[0]),
            "same child, same pseudonym"
        );
    }

    #[test]
    fn profiles_with_unknown_targets_are_refused() {
        let err =
            Profile::from_toml("name = \"x\"\n[columns]\nshoe_size = \"Shoe\"\n").unwrap_err();
        assert_eq!(
            err.to_string(),
            "profile: `shoe_size` is not a canonical field or identifier"
        );
        assert!(Profile::from_toml("name = \"x\"\ncolour = 1\n").is_err());
    }

    fn refusal(input: &str, profile: &Profile) -> String {
        let mut output = Vec::new();
        let err = pseudonymise(input.as_bytes(), &mut output, &key(), profile).unwrap_err();
        assert!(output.is_empty(), "nothing is written for a refused export");
        err.to_string()
    }

    #[test]
    fn a_column_the_profile_maps_must_be_in_the_export() {
        let profile = Profile::from_toml(
            "name = \"x\"\n[columns]\noccurred_on = \"Offence Date\"\nrecord_kind = \"Type\"\n",
        )
        .unwrap();
        assert_eq!(
            refusal(
                "forename,surname,date_of_birth,Type,OffenceDate,lat,lon\nAna,Smith,2011-01-01,incident,2024-01-01,53.8,-3.0\n",
                &profile
            ),
            "the export has no column `Offence Date` that the profile maps to occurred_on"
        );
        // An optional field the profile maps is not silently dropped either.
        let police =
            Profile::from_toml(include_str!("../../../config/profiles/police.toml")).unwrap();
        assert_eq!(
            refusal(
                "Forename,Surname,DateOfBirth,OccurrenceDate,GridX,GridY,LocationType,CSEFlags,AgeAtOccurrence,Gender\n",
                &police
            ),
            "the export has no column `OccurrenceType` that the profile maps to record_kind"
        );
        let health =
            Profile::from_toml(include_str!("../../../config/profiles/health.toml")).unwrap();
        assert_eq!(
            refusal(
                "Forename,Surname,DateOfBirth,OccurrenceType,OccurrenceDate,GridX,GridY\n",
                &health
            ),
            "the export has no column `AgeYears` that the profile maps to age \
             (nor 9 more of the columns it maps: is it this export's profile?)"
        );
    }

    #[test]
    fn an_export_must_give_every_field_an_extract_needs() {
        let refused = |header: &str| refusal(&format!("{header}\n"), &Profile::default());
        assert_eq!(
            refused("forename,surname,date_of_birth,record_kind,occured_on,lat,lon"),
            "nothing gives occurred_on, which every extract needs: the export has no column \
             `occurred_on` and the profile neither maps one to it nor gives it a default"
        );
        assert!(
            refused("forename,surname,date_of_birth,kind,occurred_on,postcode")
                .starts_with("nothing gives record_kind,")
        );
        assert_eq!(
            refused("forename,surname,dob,record_kind,occurred_on,lat,lon"),
            "nothing gives the subject: its pseudonym needs forename, surname and date_of_birth, \
             or nhs_number, and the export has no column for date_of_birth, nhs_number"
        );
        assert_eq!(
            refused("nhs_number,record_kind,occurred_on,lat,long"),
            "the export gives lat but nothing gives lon: a location needs both"
        );
        assert_eq!(
            refused("nhs_number,record_kind,occurred_on,address"),
            "nothing gives a location, which every extract needs: map lat and lon, easting and \
             northing, postcode or h3"
        );
        // A default gives a field the export lacks.
        let profile = Profile::from_toml(
            "name = \"x\"\n[defaults]\nrecord_kind = \"referral\"\npostcode = \"FY1 1AA\"\n",
        )
        .unwrap();
        let (output, summary) = run("nhs_number,occurred_on\n9434765919,2024-01-01\n", &profile);
        assert_eq!(summary.rows_written, 1);
        assert!(output.starts_with("subject,record_kind,occurred_on,postcode\n"));
        assert!(output.ends_with(",referral,2024-01-01,FY1 1AA\n"));
        assert!(
            Profile::from_toml("name = \"x\"\n[defaults]\nforename = \"Ana\"\n")
                .unwrap_err()
                .to_string()
                .contains("`forename` is not a canonical field")
        );
    }

    /// Every profile in config/profiles/ has a sample export in config/profiles/samples/ with
    /// the same name; each sample's first row is the same child.
    #[test]
    fn every_shipped_profile_turns_its_sample_export_into_valid_linked_extracts() {
        use crate::extract::{ExtractFormat, ExtractReader, RowOutcome, Rules};
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../config/profiles");
        let mut profiles: Vec<std::path::PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|entry| entry.unwrap().path())
            .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
            .collect();
        profiles.sort();
        assert_eq!(profiles.len(), 4, "{profiles:?}");
        let postcodes = std::collections::HashMap::new();
        let mut first_subjects = Vec::new();
        for path in profiles {
            let profile = Profile::from_toml(&std::fs::read_to_string(&path).unwrap()).unwrap();
            let sample = dir
                .join("samples")
                .join(path.file_stem().unwrap())
                .with_extension("csv");
            let export = std::fs::read_to_string(&sample)
                .unwrap_or_else(|err| panic!("{}: {err}", sample.display()));
            let (extract, summary) = run(&export, &profile);
            assert!(summary.rows_written > 0, "{}: no rows", path.display());
            assert_eq!(
                (summary.rows_written, summary.rows_skipped),
                (summary.rows_read, 0),
                "{}: {:?}",
                path.display(),
                summary.skipped
            );
            let lower = extract.to_lowercase();
            for identifier in ["brien", "2010-03-05", "05/03/2010", "notes", "narrative"] {
                assert!(
                    !lower.contains(identifier),
                    "{}: {identifier} leaked",
                    path.display()
                );
            }
            let mut subjects = Vec::new();
            let rules = Rules {
                today: NaiveDate::from_ymd_opt(2026, 1, 1).unwrap(),
                postcodes: &postcodes,
                kept_from: &[],
            };
            for outcome in
                ExtractReader::new(extract.as_bytes(), ExtractFormat::Csv, rules).unwrap()
            {
                match outcome.unwrap() {
                    RowOutcome::Accepted(record) => subjects.push(record.subject),
                    RowOutcome::Rejected(problems) => panic!("{}: {problems:?}", path.display()),
                }
            }
            assert_eq!(subjects.len() as u64, summary.rows_written);
            assert!(
                subjects[1..].iter().all(|subject| *subject != subjects[0]),
                "{}: only the first row is Zoë",
                path.display()
            );
            first_subjects.push(subjects[0]);
        }
        assert!(
            first_subjects
                .iter()
                .all(|subject| *subject == first_subjects[0]),
            "the same child links across every agency's export"
        );
    }
}
