//! The `atlas` binary's answers to bad input: one line naming the problem, a non-zero exit
//! code, no panic, no secret.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]

use std::io::{BufRead as _, Read as _, Write as _};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use atlas_postgres::test_db::{TestDatabase, england_boundaries};

fn atlas(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_atlas"));
    command
        .args(args)
        .env_remove("DATABASE_URL")
        .env_remove("ATLAS_ENV")
        .env("RUST_LOG", "off");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().expect("atlas runs")
}

/// The repository's config/ directory (the tests run in crates/cli/).
const CONFIG_DIR: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../../config");

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).trim().to_owned()
}

fn assert_one_line_failure(output: &Output, code: i32, expected: &str) {
    let message = stderr(output);
    assert_eq!(output.status.code(), Some(code), "{message}");
    assert_eq!(message.lines().count(), 1, "not one line: {message}");
    assert!(
        message.contains(expected),
        "{message:?} does not contain {expected:?}"
    );
    assert!(
        !message.contains("panicked") && !message.contains("backtrace"),
        "{message}"
    );
}

#[test]
fn unknown_flags_and_commands_get_one_line() {
    assert_one_line_failure(
        &atlas(&["--bogus"], &[]),
        2,
        "unexpected argument '--bogus'",
    );
    assert_one_line_failure(&atlas(&["fly"], &[]), 2, "unrecognized subcommand 'fly'");
    assert_one_line_failure(
        &atlas(
            &[
                "agency",
                "add",
                "--kind",
                "fire",
                "--name",
                "x",
                "--partnership",
                "E10000017",
            ],
            &[],
        ),
        2,
        "unknown agency kind `fire`",
    );
    assert_one_line_failure(
        &atlas(
            &[
                "agency",
                "add",
                "--kind",
                "police",
                "--name",
                "x",
                "--partnership",
                "Lancs",
            ],
            &[],
        ),
        2,
        "`Lancs` is not a GSS code",
    );
    assert_one_line_failure(
        &atlas(&["reference", "import"], &[]),
        2,
        "the following required arguments were not provided: <--boundaries <FILE>|--postcodes <FILE>|--population <FILE>|--small-area-population <FILE>|--comparators <FILE>|--regional-groups <FILE>|--places <FILE>>",
    );
    let help = atlas(&["--help"], &[]);
    assert!(help.status.success());
    assert!(String::from_utf8_lossy(&help.stdout).contains("reference"));
}

#[test]
fn bad_configuration_names_the_key_and_where_it_came_from() {
    let from_environment = atlas(&["agency", "list"], &[("ATLAS__SERVER__PORT", "eighty")]);
    assert_one_line_failure(
        &from_environment,
        1,
        "for key `server.port` in the environment",
    );

    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, "[server]\nport = \"eighty\"\n").unwrap();
    let from_file = atlas(&["--config", file.to_str().unwrap(), "agency", "list"], &[]);
    // The config crate names the file relative to the working directory.
    assert_one_line_failure(&from_file, 1, "for key `server.port` in ");
    assert!(stderr(&from_file).ends_with("bad.toml"));

    std::fs::write(&file, "[server]\nprot = 80\n").unwrap();
    assert_one_line_failure(
        &atlas(&["--config", file.to_str().unwrap(), "migrate"], &[]),
        1,
        "unknown field `prot`",
    );

    assert_one_line_failure(
        &atlas(&["--config", "/nonexistent/atlas.toml", "migrate"], &[]),
        1,
        "/nonexistent/atlas.toml does not exist",
    );
    assert_one_line_failure(
        &atlas(&["migrate"], &[("ATLAS_ENV", "staging")]),
        1,
        "ATLAS_ENV is `staging` but config/staging.toml does not exist",
    );
    let bad_key = atlas(
        &["migrate"],
        &[("ATLAS__INGEST__PSEUDONYM_KEY", "secret-but-short")],
    );
    assert_one_line_failure(
        &bad_key,
        1,
        "ingest.pseudonym_key: a pseudonym key is 64 hexadecimal characters",
    );
    assert!(!stderr(&bad_key).contains("secret-but-short"));

    assert_one_line_failure(
        &atlas(
            &["migrate"],
            &[(
                "ATLAS__WEB__TILE_URL",
                "https://{s}.tile.example.org/{z}/{x}/{y}.png",
            )],
        ),
        1,
        "web.tile_url: `https://{s}.tile.example.org/{z}/{x}/{y}.png` names no fixed host",
    );
    std::fs::write(
        &file,
        "[web.oidc]\nauthorization_endpoint = \"javascript:alert(1)\"\ntoken_endpoint = \"https://idp.example.org/token\"\nclient_id = \"atlas-web\"\nscope = \"openid\"\n",
    )
    .unwrap();
    assert_one_line_failure(
        &atlas(&["--config", file.to_str().unwrap(), "migrate"], &[]),
        1,
        "web.oidc.authorization_endpoint: `javascript:alert(1)` is not an http:// or https:// URL",
    );
}

#[test]
fn a_database_password_never_reaches_the_terminal() {
    let output = atlas(
        &["agency", "list"],
        &[(
            "ATLAS__DATABASE__URL",
            "postgres://ana:hunter2@127.0.0.1:1/atlas",
        )],
    );
    assert_one_line_failure(&output, 1, "127.0.0.1:1/atlas");
    assert!(!stderr(&output).contains("hunter2"));
}

#[tokio::test]
async fn reference_import_refuses_bad_files_and_stores_nothing() {
    let test_db = TestDatabase::new().await;
    let env = [("DATABASE_URL", test_db.url())];
    let dir = tempfile::tempdir().unwrap();

    let missing = atlas(
        &[
            "reference",
            "import",
            "--boundaries",
            "/nonexistent/b.geojson",
        ],
        &env,
    );
    assert_one_line_failure(
        &missing,
        1,
        "cannot read /nonexistent/b.geojson: No such file or directory",
    );

    let good = england_boundaries(&["E06000009"]);
    let point = r#"{"type":"Feature","properties":{"code":"E10000017","name":"Lancashire"},"geometry":{"type":"Point","coordinates":[-2.6,53.9]}}"#;
    let bad = good.replace("\n]}", &format!(",\n{point}\n]}}"));
    let file = dir.path().join("bad.geojson");
    std::fs::write(&file, bad).unwrap();
    let refused = atlas(
        &[
            "reference",
            "import",
            "--boundaries",
            file.to_str().unwrap(),
        ],
        &env,
    );
    assert_one_line_failure(
        &refused,
        1,
        "feature 2 (E10000017): geometry is a Point, expected Polygon or MultiPolygon",
    );

    let neighbours = dir.path().join("neighbours.csv");
    std::fs::write(&neighbours, "code,neighbour_code\nE06000009,E06000009\n").unwrap();
    let good_file = dir.path().join("good.geojson");
    std::fs::write(&good_file, good).unwrap();
    let refused = atlas(
        &[
            "reference",
            "import",
            "--boundaries",
            good_file.to_str().unwrap(),
            "--neighbours",
            neighbours.to_str().unwrap(),
        ],
        &env,
    );
    assert_one_line_failure(
        &refused,
        1,
        "neighbours line 2: E06000009 is listed as its own neighbour",
    );

    let listed = atlas(
        &[
            "agency",
            "add",
            "--kind",
            "police",
            "--name",
            "Lancashire Constabulary",
            "--partnership",
            "E06000009",
        ],
        &env,
    );
    assert_one_line_failure(&listed, 1, "partnership E06000009 does not exist");
}

#[test]
fn an_agency_makes_a_key_and_pseudonymises_an_export_with_its_profile() {
    use std::os::unix::fs::PermissionsExt as _;
    let dir = tempfile::tempdir().unwrap();
    let key = dir.path().join("linkage.key");
    let key_arg = key.to_str().unwrap();
    let made = atlas(&["pseudonymise", "keygen", "--out", key_arg], &[]);
    assert!(made.status.success(), "{}", stderr(&made));
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_eq!(std::fs::read_to_string(&key).unwrap().trim().len(), 64);
    assert_one_line_failure(
        &atlas(&["pseudonymise", "keygen", "--out", key_arg], &[]),
        1,
        "an existing key is never overwritten",
    );

    let export = dir.path().join("export.csv");
    std::fs::write(
        &export,
        "Forename,Surname,DateOfBirth,OccurrenceType,OccurrenceDate,GridX,GridY,LocationType,CSEFlags,AgeAtOccurrence,Gender,OfficerNotes\n\
         Zoë,O'Brien,05/03/2010,CSE Crime,14/02/2024,331910,436189,Hotel,MISS|OLDR,13,Female,free text\n",
    )
    .unwrap();
    let output = dir.path().join("extract.csv");
    let profile = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/profiles/police.toml"
    );
    let done = atlas(
        &[
            "pseudonymise",
            export.to_str().unwrap(),
            "--key",
            key_arg,
            "--profile",
            profile,
            "--output",
            output.to_str().unwrap(),
        ],
        &[],
    );
    assert!(done.status.success(), "{}", stderr(&done));
    assert!(
        stderr(&done).starts_with("pseudonymised 1 of 1 rows"),
        "{}",
        stderr(&done)
    );
    let extract = std::fs::read_to_string(&output).unwrap();
    assert!(
        extract.starts_with(
            "subject,record_kind,occurred_on,easting,northing,location_role,indicators,age,sex\n"
        ),
        "{extract}"
    );
    assert!(
        extract
            .contains(",incident,2024-02-14,331910,436189,meeting,missing;older_associate,13,F\n"),
        "{extract}"
    );
    assert!(!extract.contains("Brien") && !extract.contains("free text"));

    // A profile that does not fit the export is refused, naming the column, and the earlier
    // extract is left as it was.
    let health = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../config/profiles/health.toml"
    );
    let mismatched = atlas(
        &[
            "pseudonymise",
            export.to_str().unwrap(),
            "--key",
            key_arg,
            "--profile",
            health,
            "--output",
            output.to_str().unwrap(),
        ],
        &[],
    );
    assert_one_line_failure(
        &mismatched,
        1,
        "error: the export has no column `AgeYears` that the profile maps to age (nor 9 more of the columns",
    );
    assert_eq!(std::fs::read_to_string(&output).unwrap(), extract);
    assert_eq!(
        std::fs::read_dir(dir.path()).unwrap().count(),
        3,
        "no partial file is left"
    );
    // So is an export whose header misnames a column the profile maps, even an optional one.
    let misnamed = dir.path().join("misnamed.csv");
    std::fs::write(
        &misnamed,
        std::fs::read_to_string(&export)
            .unwrap()
            .replace("OccurrenceType", "Occurrence Type"),
    )
    .unwrap();
    assert_one_line_failure(
        &atlas(
            &[
                "pseudonymise",
                misnamed.to_str().unwrap(),
                "--key",
                key_arg,
                "--profile",
                profile,
            ],
            &[],
        ),
        1,
        "error: the export has no column `OccurrenceType` that the profile maps to record_kind",
    );
    // Without a profile, the export's own column names must give every field an extract needs.
    assert_one_line_failure(
        &atlas(
            &["pseudonymise", misnamed.to_str().unwrap(), "--key", key_arg],
            &[],
        ),
        1,
        "error: nothing gives the subject: its pseudonym needs forename, surname and \
         date_of_birth, or nhs_number, and the export has no column for date_of_birth, nhs_number",
    );

    assert_one_line_failure(
        &atlas(&["pseudonymise", export.to_str().unwrap()], &[]),
        1,
        "--key FILE",
    );
    assert_one_line_failure(
        &atlas(
            &[
                "pseudonymise",
                export.to_str().unwrap(),
                "--key",
                export.to_str().unwrap(),
            ],
            &[],
        ),
        1,
        "is not a linkage key",
    );
}

#[test]
fn serve_outside_development_needs_a_pseudonym_key_of_its_own() {
    let production = [
        ("ATLAS_ENV", "production"),
        ("ATLAS_CONFIG_DIR", CONFIG_DIR),
    ];
    assert_one_line_failure(
        &atlas(&["serve"], &production),
        1,
        "error: configuration: ingest.pseudonym_key is not set, and ATLAS_ENV is `production`: \
         set a secret key of this instance's own",
    );
    let development_key = std::fs::read_to_string(format!("{CONFIG_DIR}/development.toml"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("pseudonym_key = "))
        .unwrap()
        .trim_matches('"')
        .to_owned();
    let published = atlas(
        &["serve"],
        &[
            production[0],
            production[1],
            ("ATLAS__INGEST__PSEUDONYM_KEY", &development_key),
        ],
    );
    assert_one_line_failure(
        &published,
        1,
        "error: configuration: ingest.pseudonym_key is the development key published in the \
         repository, and ATLAS_ENV is `production`",
    );
    assert!(!stderr(&published).contains(&development_key));
    // With a key of its own, it still needs an audit chain key of its own.
    let own_key = "5a".repeat(32);
    let no_chain_key = atlas(
        &["serve"],
        &[
            production[0],
            production[1],
            ("ATLAS__INGEST__PSEUDONYM_KEY", &own_key),
        ],
    );
    assert_one_line_failure(
        &no_chain_key,
        1,
        "error: configuration: audit.chain_key is not set, and ATLAS_ENV is `production`",
    );
}

/// Runs `atlas serve` (PostgreSQL need not answer), waits until it serves, sends `signal` and
/// returns its exit status and log.
fn serve_and_stop(signal: &str) -> (std::process::ExitStatus, String) {
    let mut server = Command::new(env!("CARGO_BIN_EXE_atlas"))
        .arg("serve")
        .env_remove("ATLAS_ENV")
        .env("DATABASE_URL", "postgres://postgres@127.0.0.1:1/atlas")
        .env("ATLAS__SERVER__PORT", "0")
        .env("ATLAS__SERVER__WORKERS", "1")
        .env("ATLAS__LOG__FORMAT", "json")
        .env("RUST_LOG", "info")
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("atlas serve starts");
    let mut log = std::io::BufReader::new(server.stderr.take().unwrap());
    let mut seen = String::new();
    let port = loop {
        let mut line = String::new();
        assert!(log.read_line(&mut line).unwrap() > 0, "no port: {seen}");
        seen.push_str(&line);
        if let Some((_, rest)) = line.split_once("listening on http://127.0.0.1:") {
            break rest
                .chars()
                .take_while(char::is_ascii_digit)
                .collect::<String>();
        }
    };
    // Once /healthz answers, the server is running and listening for signals.
    let started = Instant::now();
    loop {
        let answer =
            std::net::TcpStream::connect(format!("127.0.0.1:{port}")).and_then(|mut stream| {
                stream.write_all(b"GET /healthz HTTP/1.0\r\n\r\n")?;
                let mut answer = String::new();
                stream.read_to_string(&mut answer)?;
                Ok(answer)
            });
        if answer.is_ok_and(|answer| answer.contains(" 200 OK")) {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "never healthy: {seen}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let sent = Command::new("kill")
        .args(["-s", signal, &server.id().to_string()])
        .status()
        .unwrap();
    assert!(sent.success());
    let started = Instant::now();
    let status = loop {
        if let Some(status) = server.try_wait().unwrap() {
            break status;
        }
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "atlas serve still running 15 s after SIG{signal}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    log.read_to_string(&mut seen).unwrap();
    (status, seen)
}

#[test]
fn serve_stops_gracefully_on_sigint_as_on_sigterm() {
    for signal in ["INT", "TERM"] {
        let (status, log) = serve_and_stop(signal);
        assert!(status.success(), "SIG{signal}: {status}\n{log}");
        assert!(
            log.contains(&format!(
                "SIG{signal} received: stopping gracefully; requests in flight have 30 s to finish"
            )),
            "{log}"
        );
        assert!(!log.contains("forced"), "{log}");
        // Every request leaves one access-log line: the health checks made while waiting.
        let access = log
            .lines()
            .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
            .find(|line| line["target"] == "atlas_server::access")
            .unwrap_or_else(|| panic!("no access-log line: {log}"));
        assert_eq!(access["path"], "/healthz", "{access}");
        assert_eq!(access["method"], "GET", "{access}");
        assert!(
            access["status"].is_u64() && access["elapsed_ms"].is_u64(),
            "{access}"
        );
        assert!(
            access["request_id"]
                .as_str()
                .is_some_and(|id| id.len() == 36),
            "{access}"
        );
    }
}

#[test]
fn a_bad_place_table_is_refused_naming_the_line() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("places.csv");
    std::fs::write(
        &file,
        "name,lat,lon,population,utla_code\nBurnley,53.8,west,73000,E10000017\n",
    )
    .unwrap();
    assert_one_line_failure(
        &atlas(
            &["reference", "import", "--places", file.to_str().unwrap()],
            &[],
        ),
        1,
        "places line 2: `west` is not a longitude in degrees (WGS84)",
    );
}

#[test]
fn a_retention_period_for_an_unknown_kind_is_refused_naming_it() {
    assert_one_line_failure(
        &atlas(
            &["retention", "apply", "--dry-run"],
            &[("ATLAS__RETENTION__KEEP_YEARS__GOSSIP", "1")],
        ),
        1,
        "retention.keep_years: `gossip` is not a record kind",
    );
}

#[test]
fn an_erasure_of_something_that_is_not_a_pseudonym_is_refused_without_repeating_it() {
    assert_one_line_failure(
        &atlas(
            &[
                "erasure",
                "apply",
                "--pseudonym",
                "Jane Doe",
                "--reference",
                "DPO-1",
                "--dry-run",
            ],
            &[],
        ),
        1,
        "erasure: --pseudonym: a pseudonym is 64 hexadecimal characters, this has 8",
    );
    // Read from standard input (`-`), the pseudonym stays out of the process list; it is
    // checked the same way.
    let mut child = Command::new(env!("CARGO_BIN_EXE_atlas"))
        .args([
            "erasure",
            "apply",
            "--pseudonym",
            "-",
            "--reference",
            "DPO-1",
        ])
        .env_remove("DATABASE_URL")
        .env_remove("ATLAS_ENV")
        .env("RUST_LOG", "off")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"Jane Doe\n")
        .unwrap();
    assert_one_line_failure(
        &child.wait_with_output().unwrap(),
        1,
        "erasure: --pseudonym: a pseudonym is 64 hexadecimal characters, this has 8",
    );
}
