//! The web application in a real browser (Debian's chromium through chromedriver), against the
//! demo as a new user starts it: a partnership analyst reads the hotspot map, an agency analyst
//! uploads an extract, a partner viewer reads a release and nothing at cell level, an analyst
//! compares and an auditor checks the trail. Screenshots of each page are saved in
//! `target/<profile>/web-screenshots/`.

#![expect(
    clippy::string_slice,
    reason = "tests slice text they built themselves"
)]

use atlas_e2e::TestDatabase;
use atlas_e2e::browser::{Browser, Demo, screenshot_dir};
use h3o::{LatLng, Resolution};
use serde_json::{Value, json};

const LANCASHIRE: &str = "E10000017";
/// The planted clusters in Lancashire (`atlas_cli::synthetic::CLUSTERS`): Preston and Burnley.
const PLANTED: [(f64, f64); 2] = [(53.7590, -2.6990), (53.7893, -2.2405)];
/// The map's H3 resolution in this test.
const RESOLUTION: u8 = 8;
/// Right arrow, as WebDriver sends it.
const ARROW_RIGHT: &str = "\u{e014}";
/// Enter, as WebDriver sends it.
const ENTER: &str = "\u{e007}";

fn planted_cells() -> Vec<String> {
    PLANTED
        .iter()
        .map(|&(lat, lon)| {
            LatLng::new(lat, lon)
                .expect("a valid coordinate")
                .to_cell(Resolution::try_from(RESOLUTION).expect("a resolution"))
                .to_string()
        })
        .collect()
}

/// Records whatever the page's Content Security Policy blocks, until the page reloads.
async fn watch_csp(browser: &Browser) {
    browser
        .run("window.violations = []; document.addEventListener('securitypolicyviolation', (event) => window.violations.push(`${event.violatedDirective} ${event.blockedURI}`)); return true;", vec![])
        .await;
}

/// Checks the page's Content Security Policy blocked nothing since `watch_csp`.
async fn assert_within_csp(browser: &Browser, user: &str) {
    assert_eq!(
        browser.run("return window.violations;", vec![]).await,
        json!([]),
        "{user}'s pages ran within their Content Security Policy"
    );
}

/// Checks the page as it stands against WCAG 2.1 AA with axe-core.
async fn assert_accessible(browser: &Browser, page: &str) {
    let violations = browser.accessibility_violations().await;
    assert!(
        violations.is_empty(),
        "the {page} page breaks WCAG 2.1 AA rules:\n{}",
        violations.join("\n")
    );
}

/// Signs the current user out (the page reloads to the sign-in page, forgetting what it
/// showed; the pages they saw must have kept to the CSP), then picks `user` from the demo's
/// list.
async fn switch_user(browser: &Browser, from: &str, user: &str) {
    assert_within_csp(browser, from).await;
    browser.click("#sign-out").await;
    browser
        .wait_until(
            "the sign-in page after signing out",
            "return !document.getElementById('sign-in').hidden && document.getElementById('nav').hidden && sessionStorage.getItem('atlas-token') === null && document.querySelectorAll('#demo-users button').length > 0;",
        )
        .await;
    watch_csp(browser).await;
    browser.click(&format!("button[data-user='{user}']")).await;
}

/// Opens `page` in a phone-sized window (390 × 844), waits for `ready`, checks nothing scrolls
/// sideways and takes a screenshot; then the desktop window again.
async fn assert_fits_a_phone(browser: &Browser, page: &str, ready: &str) {
    browser
        .client
        .set_window_size(390, 844)
        .await
        .expect("a phone-sized window");
    browser
        .run(
            &format!("window.location.hash = '{page}'; return true;"),
            vec![],
        )
        .await;
    browser
        .wait_until(&format!("the {page} page on a phone"), ready)
        .await;
    let widths = browser
        .run(
            "const clipped = (node) => { for (let up = node.parentElement; up; up = up.parentElement) { if (['auto', 'scroll', 'hidden'].includes(getComputedStyle(up).overflowX)) return true; } return false; }; return [document.documentElement.scrollWidth, window.innerWidth, [...document.querySelectorAll('body *')].filter((node) => node.getBoundingClientRect().right > window.innerWidth + 1 && !clipped(node)).slice(0, 8).map((node) => `${node.tagName}#${node.id}.${node.className} ${Math.round(node.getBoundingClientRect().width)}px ${getComputedStyle(node).display}`)];",
            vec![],
        )
        .await;
    assert!(
        widths[0].as_i64() <= widths[1].as_i64(),
        "the {page} page scrolls sideways on a phone: {widths}"
    );
    browser.screenshot(&format!("{page}-phone")).await;
    browser
        .client
        .set_window_size(1280, 1000)
        .await
        .expect("a desktop window again");
}

/// The text of a PDF, by poppler's `pdftotext` (Debian's poppler-utils; scripts/test.sh
/// installs it).
fn pdf_text(pdf: &[u8]) -> String {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file = dir.path().join("printed.pdf");
    std::fs::write(&file, pdf).expect("the PDF is written");
    let output = std::process::Command::new("pdftotext")
        .args(["-layout"])
        .arg(&file)
        .arg("-")
        .output()
        .expect("pdftotext runs (apt-get install poppler-utils; scripts/test.sh installs it)");
    assert!(output.status.success(), "pdftotext read the PDF");
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Fills the requests page's form, asking `asked` (a partnership's code, or `group:NAME`) for
/// 2025-Q4 for `purpose`, needed in 30 days, and sends it.
async fn ask_for_summary(browser: &Browser, asked: &str, purpose: &str) {
    browser.choose("#request-owner", asked).await;
    browser.type_into("#request-periods", "2025-Q4").await;
    browser.type_into("#request-purpose", purpose).await;
    browser
        .run(
            "document.getElementById('request-needed-by').value = new Date(Date.now() + 30 * 86400000).toISOString().slice(0, 10); return true;",
            vec![],
        )
        .await;
    browser.click("#request-form button[type=submit]").await;
}

async fn attribute(browser: &Browser, script: &str) -> Value {
    browser.run(script, vec![]).await
}

/// Checks a legend's counts agree with their noun ("1 distinct child", "2 distinct children")
/// and that it has at least one.
fn assert_plural_counts(legend: &str, singular: &str, plural: &str) {
    let mut counts = 0;
    for line in legend.lines().map(str::trim) {
        let Some((number, noun)) = line.split_once(' ') else {
            continue;
        };
        let Ok(number) = number.parse::<u64>() else {
            continue;
        };
        counts += 1;
        let expected = if number == 1 { singular } else { plural };
        assert_eq!(noun, expected, "the legend's line `{line}`:\n{legend}");
    }
    assert!(counts > 0, "the legend has counts:\n{legend}");
}

#[tokio::test]
#[expect(clippy::too_many_lines)] // One journey through every page, in order.
async fn analysts_viewers_and_auditors_use_the_web_application() {
    let test_db = TestDatabase::new().await;
    let dir = tempfile::tempdir().expect("a temporary directory");
    let demo = Demo::start(test_db.url(), &dir.path().join("demo"));
    // The demo keys pseudonyms with a server key of its own, not the published development key.
    let server_key = dir.path().join("demo/server-pseudonym.key");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&server_key)
            .expect("the demo made its server key")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600);
    let log = std::fs::read_to_string(dir.path().join("demo/demo.err")).unwrap();
    assert!(!log.contains("development key published"), "{log}");
    let browser = Browser::start().await;
    let _ = std::fs::remove_dir_all(screenshot_dir());

    // Sign in as the demo's partnership analyst: the map draws the partnership's cells.
    browser
        .client
        .goto(&format!("{}/", demo.base))
        .await
        .expect("the page opens");
    browser
        .wait_until(
            "the demo users",
            "return document.querySelectorAll('#demo-users button').length >= 10;",
        )
        .await;
    browser.screenshot("sign-in").await;
    assert_accessible(&browser, "sign-in").await;
    watch_csp(&browser).await;
    browser
        .click("button[data-user='lancashire-analyst']")
        .await;
    browser
        .wait_until(
            "the first drawing and the neighbours' outlines",
            "const map = document.getElementById('map'); return Number(map.dataset.cells || 0) > 0 && map.dataset.neighbours !== undefined;",
        )
        .await;
    let facts = demo
        .get_json(
            "lancashire-analyst",
            &format!("/api/v1/partnerships/{LANCASHIRE}"),
        )
        .await;
    // The demo's partnerships share `comparison` and `regional_hotspots` (docs/privacy.md):
    // Lancashire's comparison shows Blackpool with its gated figures, and its regional hotspots
    // merge Blackpool's records.
    let comparison = demo
        .get_json(
            "lancashire-analyst",
            &format!("/api/v1/partnerships/{LANCASHIRE}/comparison?from=2024-01-01&to=2025-12-31"),
        )
        .await;
    let blackpool = comparison["members"]
        .as_array()
        .expect("members")
        .iter()
        .find(|member| member["code"] == "E06000009")
        .expect("Blackpool, Lancashire's neighbour");
    assert_eq!(blackpool["figures_shared"], true, "{blackpool}");
    assert!(
        blackpool["records"]
            .as_u64()
            .is_some_and(|records| records > 5),
        "{blackpool}"
    );
    let regional = demo
        .get_json(
            "lancashire-analyst",
            &format!("/api/v1/partnerships/{LANCASHIRE}/regional-hotspots?from=2024-01-01&to=2025-12-31&resolution=7"),
        )
        .await;
    assert!(
        regional["settings"]["merged"]
            .as_array()
            .expect("merged")
            .iter()
            .any(|code| code == "E06000009"),
        "{}",
        regional["settings"]
    );
    assert_eq!(
        attribute(
            &browser,
            "return Number(document.getElementById('map').dataset.neighbours);"
        )
        .await,
        json!(facts["neighbours"].as_array().expect("neighbours").len()),
        "every neighbour of Lancashire is outlined"
    );
    // The towns are named over the cells (the largest at county zoom), attributed to GeoNames,
    // and no label is a tab stop.
    browser
        .wait_until(
            "place labels",
            "const map = document.getElementById('map'); const shown = [...map.querySelectorAll('.place-label:not([hidden])')].map((label) => label.textContent); return Number(map.dataset.placeLabels) > 0 && shown.includes('Preston') && map.querySelector('.leaflet-control-attribution').textContent.includes('GeoNames') && [...map.querySelectorAll('.place-label')].every((label) => label.tabIndex < 0);",
        )
        .await;

    // At resolution 8 it draws exactly the cells the API counts, the planted clusters among them,
    // by distinct children unless asked otherwise.
    browser.choose("#resolution", &RESOLUTION.to_string()).await;
    browser
        .wait_until("resolution 8", "const map = document.getElementById('map'); return map.dataset.resolution === '8' && map.dataset.layer === 'subjects' && map.dataset.value === 'subjects';")
        .await;
    let legend = attribute(
        &browser,
        "return document.getElementById('legend').innerText;",
    )
    .await;
    assert_plural_counts(
        legend.as_str().unwrap_or_default(),
        "distinct child",
        "distinct children",
    );
    let grid = demo
        .get_json(
            "lancashire-analyst",
            &format!("/api/v1/partnerships/{LANCASHIRE}/grid?resolution={RESOLUTION}"),
        )
        .await;
    let api_cells = grid["cells"].as_array().expect("cells").len();
    let drawn = attribute(
        &browser,
        "return document.querySelectorAll('#map path[data-cell]').length;",
    )
    .await;
    assert_eq!(
        drawn,
        json!(api_cells),
        "every cell the API counts is drawn, and no other"
    );
    let planted = planted_cells();
    for cell in &planted {
        let present = browser
            .run(
                "return document.querySelector(`#map path[data-cell='${arguments[0]}']`) !== null;",
                vec![json!(cell)],
            )
            .await;
        assert_eq!(
            present,
            json!(true),
            "the planted cluster's cell {cell} is drawn"
        );
    }

    // A click on a cell shows its figures, the same as the API's.
    browser
        .click(&format!("#map path[data-cell='{}']", planted[0]))
        .await;
    browser
        .wait_until(
            "the cell's figures",
            &format!(
                "return document.getElementById('details').innerText.includes('{}');",
                planted[0]
            ),
        )
        .await;
    let details = attribute(
        &browser,
        "return document.getElementById('details').innerText;",
    )
    .await;
    let figures = grid["cells"]
        .as_array()
        .expect("cells")
        .iter()
        .find(|cell| cell["cell"] == json!(planted[0]))
        .expect("the planted cell is in the grid");
    let (records, children) = (&figures["records"], &figures["subjects"]);
    let details = details.as_str().unwrap_or_default();
    assert!(
        details.contains(&format!("Distinct children\t{children}"))
            && details.contains(&format!("Records\t{records}")),
        "the details show {children} distinct children and {records} records: {details}"
    );
    assert!(!details.contains("subjects"), "{details}");
    browser.screenshot("map-children").await;
    assert_accessible(&browser, "map-children").await;

    // The records layer says it counts records, in the singular for one.
    browser.choose("#layer", "records").await;
    browser
        .wait_until("the records layer", "const map = document.getElementById('map'); return map.dataset.layer === 'records' && map.dataset.value === 'records' && document.getElementById('legend').innerText.includes('Records per cell');")
        .await;
    let legend = attribute(
        &browser,
        "return document.getElementById('legend').innerText;",
    )
    .await;
    assert_plural_counts(legend.as_str().unwrap_or_default(), "record", "records");
    browser.screenshot("map-records").await;
    assert_accessible(&browser, "map-records").await;

    // The Gi* layer colours both planted clusters as 99 % hot spots.
    browser.choose("#layer", "bin").await;
    browser
        .wait_until("the Gi* layer", "const map = document.getElementById('map'); return map.dataset.layer === 'bin' && Number(map.dataset.cells) > 0;")
        .await;
    for cell in &planted {
        let shown = browser
            .run(
                "const path = document.querySelector(`#map path[data-cell='${arguments[0]}']`); return path ? [path.dataset.bin, path.getAttribute('fill')] : null;",
                vec![json!(cell)],
            )
            .await;
        assert_eq!(
            shown,
            json!(["3", "#b2182b"]),
            "planted cluster {cell} is a 99 % hot spot in red"
        );
    }
    let legend = attribute(
        &browser,
        "return document.getElementById('legend').innerText;",
    )
    .await;
    let legend = legend.as_str().unwrap_or_default();
    assert!(
        legend.contains("Hot spot, 99 % confidence") && legend.contains("of distinct children"),
        "{legend}"
    );
    // The hot spot areas: a sentence in words naming the planted clusters' towns, and a table
    // of areas a few Tabs from the layer control (hexagons are not tab stops).
    browser
        .wait_until(
            "the hot spot areas named",
            "const text = document.getElementById('areas-summary').textContent; return /^\\d+ hot spot areas? at 95 % confidence or more: /.test(text) && text.includes('Burnley') && text.includes('Preston');",
        )
        .await;
    let names = attribute(
        &browser,
        "return [...document.querySelectorAll('#area-table tbody tr')].map((row) => row.dataset.area);",
    )
    .await;
    for town in ["Burnley", "Preston"] {
        assert!(
            names.as_array().is_some_and(|names| names
                .iter()
                .any(|name| name.as_str().is_some_and(|name| name.contains(town)))),
            "an area named after {town}: {names}"
        );
    }
    let tabs = attribute(
        &browser,
        "const focusable = [...document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex]')].filter((node) => node.tabIndex >= 0 && !node.disabled && node.getClientRects().length > 0); return [focusable.indexOf(document.querySelector('#how-to-read summary')), focusable.indexOf(document.querySelector('#area-table tbody button')), [...document.querySelectorAll('#map path[data-cell]')].filter((path) => path.tabIndex >= 0).length];",
    )
    .await;
    let (layer, area, hexagon_stops) = (
        tabs[0].as_i64().unwrap_or(-1),
        tabs[1].as_i64().unwrap_or(-1),
        tabs[2].as_i64().unwrap_or(-1),
    );
    assert!(
        layer >= 0 && area > layer && area - layer <= 10 && hexagon_stops == 0,
        "the first area is {} Tabs after the page's first control; {hexagon_stops} hexagons are tab stops",
        area - layer
    );
    // The printed map: A4 landscape with the title, the period, the legend, the area table and
    // the place names' attribution in its text, and the map as a picture (also exported as PNG).
    browser
        .wait_until(
            "the map's picture",
            "const picture = document.getElementById('map-picture'); return picture.src.startsWith('data:image/png') && picture.naturalWidth === 1600;",
        )
        .await;
    let pdf = browser.print_pdf("map", true).await;
    let raw = String::from_utf8_lossy(&pdf);
    assert!(
        raw.contains("/MediaBox [0 0 841") || raw.contains("/MediaBox [0 0 842"),
        "A4 landscape pages"
    );
    let printed = pdf_text(&pdf);
    for words in [
        "Hotspot map",
        "Period:",
        "Hot spot, 99 % confidence",
        "hot spot area",
        "GeoNames",
    ] {
        assert!(
            printed.contains(words),
            "the printed map says {words:?}: {printed}"
        );
    }
    browser
        .click("#area-table thead th:first-child button")
        .await;
    browser
        .wait_until(
            "the areas sorted by name",
            "const th = document.querySelector('#area-table thead th:first-child[aria-sort=ascending]'); const names = [...document.querySelectorAll('#area-table tbody tr')].map((row) => row.dataset.area); return th !== null && names.every((name, i) => i === 0 || names[i - 1].localeCompare(name) <= 0);",
        )
        .await;
    assert_eq!(
        attribute(
            &browser,
            "return document.getElementById('map').dataset.value;"
        )
        .await,
        json!("subjects"),
        "the Gi* layer counts distinct children"
    );
    // The cell panel follows the selected planted cell, in plain words: its confidence, its
    // distinct children and a p-value with no exponent.
    browser
        .wait_until(
            "the planted cell's Gi* figures",
            &format!(
                "const text = document.getElementById('details').innerText; return text.includes('{}') && text.includes('Gi* result') && /Where\\s+(\\d+ km [a-z-]+ of )?[A-Z][a-z]/.test(text);",
                planted[0]
            ),
        )
        .await;
    let details = attribute(
        &browser,
        "return document.getElementById('details').innerText;",
    )
    .await;
    let details = details.as_str().unwrap_or_default();
    assert!(
        details.contains("Gi* result\tHot spot, 99 % confidence"),
        "{details}"
    );
    assert!(details.contains("Distinct children\t"), "{details}");
    assert!(details.contains("\t< 0.001"), "{details}");
    assert!(
        !details.contains("subjects") && !details.contains("bin"),
        "{details}"
    );
    assert_eq!(
        browser
            .run(
                "return /[0-9]e[-+][0-9]/.test(arguments[0]);",
                vec![json!(details)]
            )
            .await,
        json!(false),
        "no p-value is written with an exponent: {details}"
    );
    // The layer's requests name the value it counts, and so do its downloads, which ask the
    // same address.
    let asked = attribute(&browser, "const names = performance.getEntriesByType('resource').map((entry) => entry.name).filter((name) => name.includes('/hotspots?')); return names.length > 0 && names.every((name) => name.includes('value=subjects'));").await;
    assert_eq!(
        asked,
        json!(true),
        "the Gi* layer asks for distinct children"
    );
    browser.screenshot("map-hotspots").await;
    assert_accessible(&browser, "map-hotspots").await;

    // At resolution 9 the whole county's study area (tens of thousands of cells) is drawn on a
    // canvas, not as one SVG element per cell.
    browser.choose("#resolution", "9").await;
    browser
        .wait_until("the Gi* layer at resolution 9", "const map = document.getElementById('map'); return map.dataset.resolution === '9' && Number(map.dataset.cells) > 10000;")
        .await;
    assert_eq!(
        attribute(&browser, "return [document.querySelectorAll('#map path[data-cell]').length, document.querySelectorAll('#map canvas').length > 0];").await,
        json!([0, true])
    );
    browser.choose("#resolution", &RESOLUTION.to_string()).await;

    // A period to which no agency contributed is "no data", said in words, not drawn as zeros
    // or as cells that are "not significant".
    browser
        .run(
            "for (const [id, value] of [['from', '2010-01-01'], ['to', '2010-12-31']]) { const input = document.getElementById(id); input.value = value; input.dispatchEvent(new Event('change')); }",
            vec![],
        )
        .await;
    browser
        .wait_until("no data for 2010", "const map = document.getElementById('map'); return map.dataset.noData === 'true' && map.dataset.cells === '0';")
        .await;
    let notice = attribute(
        &browser,
        "return document.getElementById('legend').innerText;",
    )
    .await;
    assert!(
        notice.as_str().unwrap().contains("No data: no agency has contributed records for 2010-01-01 to 2010-12-31. This is not a count of zero."),
        "{notice}"
    );
    browser
        .run(
            "for (const id of ['from', 'to']) { const input = document.getElementById(id); input.value = ''; input.dispatchEvent(new Event('change')); }",
            vec![],
        )
        .await;
    browser
        .wait_until("data again", "const map = document.getElementById('map'); return map.dataset.noData === 'false' && Number(map.dataset.cells) > 0;")
        .await;

    // The time slider: one month at a time, moved by keyboard and played; each month redraws.
    browser.choose("#layer", "records").await;
    browser.click("#month-mode").await;
    browser
        .wait_until("the first month", "const map = document.getElementById('map'); return map.dataset.layer === 'records' && map.dataset.period === '2024-01-01..2024-01-31';")
        .await;
    let january = attribute(&browser, "return [...document.querySelectorAll('#map path[data-cell]')].map((path) => path.dataset.cell).sort().join();").await;
    browser.type_into("#month", &ARROW_RIGHT.repeat(6)).await;
    browser
        .wait_until(
            "July 2024",
            "return document.getElementById('map').dataset.period === '2024-07-01..2024-07-31';",
        )
        .await;
    let july = attribute(&browser, "return [...document.querySelectorAll('#map path[data-cell]')].map((path) => path.dataset.cell).sort().join();").await;
    assert_ne!(january, july, "July's cells are not January's");
    // Months compare: one colour scale over the whole period, said in the legend; the filters
    // in force show beside the closed filter panel.
    let scale = attribute(
        &browser,
        "return [document.getElementById('legend').innerText, document.getElementById('active-filters').innerText];",
    )
    .await;
    assert!(
        scale[0]
            .as_str()
            .is_some_and(|legend| legend.contains("Every month is coloured on one scale")),
        "{scale}"
    );
    assert!(
        scale[1]
            .as_str()
            .is_some_and(|chips| chips.contains("No filters")),
        "{scale}"
    );
    assert_eq!(
        attribute(
            &browser,
            "return document.getElementById('month-label').textContent;"
        )
        .await,
        json!("July 2024")
    );
    browser.click("#play").await;
    browser
        .wait_until(
            "playing on from July",
            "return document.getElementById('map').dataset.period !== '2024-07-01..2024-07-31';",
        )
        .await;
    browser.click("#play").await;
    assert_eq!(
        attribute(
            &browser,
            "return document.getElementById('map').dataset.period;"
        )
        .await,
        json!("2024-08-01..2024-08-31"),
        "playing shows the next month"
    );
    browser.screenshot("map-month").await;

    // The comparison page: rates beside the neighbours, a trend chart, and the published release.
    browser.click("nav a[data-page='comparison']").await;
    browser
        .wait_until("the comparison", "return document.querySelectorAll('#comparison-chart path[data-member]').length >= 2 && document.querySelector('#releases [data-status=published]') !== null;")
        .await;
    let note = attribute(
        &browser,
        "return document.getElementById('suppression-note').innerText;",
    )
    .await;
    assert!(
        note.as_str().unwrap_or_default().contains("APPROXIMATE"),
        "{note}"
    );
    browser.screenshot("comparison").await;
    assert_accessible(&browser, "comparison").await;
    // The skip link, from the keyboard, moves focus to the page and leaves the address alone.
    browser
        .run(
            "document.querySelector('.skip').focus(); return true;",
            vec![],
        )
        .await;
    browser.type_into(".skip", ENTER).await;
    assert_eq!(
        attribute(
            &browser,
            "return [window.location.hash, document.activeElement.id];"
        )
        .await,
        json!(["#comparison", "comparison-title"])
    );

    // The profiles page: the schedule's latest profile beside the quarter before, figures as
    // the API gives them; the board edition; printed to A4 for board papers.
    browser.click("nav a[data-page='profiles']").await;
    browser
        .wait_until(
            "two profiles side by side",
            "return document.querySelectorAll('#profile-view article.profile[data-edition=own]').length === 2;",
        )
        .await;
    let listed = demo
        .get_json(
            "lancashire-analyst",
            &format!("/api/v1/partnerships/{LANCASHIRE}/profiles"),
        )
        .await;
    let latest = &listed["profiles"][0];
    assert_eq!(latest["generated_by"], "schedule", "{listed}");
    let profile = demo
        .get_json(
            "lancashire-analyst",
            &format!(
                "/api/v1/partnerships/{LANCASHIRE}/profiles/{}",
                latest["period"].as_str().expect("a period")
            ),
        )
        .await;
    // The profile's figures against an independent count over the stored records.
    let (first_day, last_day) = (
        profile["content"]["first_day"]
            .as_str()
            .expect("a first day"),
        profile["content"]["last_day"].as_str().expect("a last day"),
    );
    let database = atlas_store::connect_admin(test_db.url(), std::time::Duration::from_secs(5))
        .await
        .expect("the test database answers");
    let stored = database
        .query_one(
            "SELECT count(DISTINCT subject), count(*),
                    count(DISTINCT subject) FILTER (WHERE NOT EXISTS (
                        SELECT 1 FROM case_records earlier
                        WHERE earlier.partnership_code = r.partnership_code
                          AND earlier.subject = r.subject AND earlier.occurred_on < $2::text::date))
             FROM case_records r
             WHERE partnership_code = $1 AND occurred_on BETWEEN $2::text::date AND $3::text::date",
            &[&LANCASHIRE, &first_day, &last_day],
        )
        .await
        .expect("the stored records are counted");
    let scale = &profile["content"]["scale"];
    assert_eq!(
        [
            scale["children"].clone(),
            scale["records"].clone(),
            scale["new_children"].clone()
        ],
        [
            json!(stored.get::<_, i64>(0)),
            json!(stored.get::<_, i64>(1)),
            json!(stored.get::<_, i64>(2))
        ],
        "the profile's scale is the stored records' own"
    );
    let shown_children = attribute(
        &browser,
        "const article = document.querySelector('#profile-view article.profile'); const row = [...article.querySelectorAll('table tbody tr')].find((row) => row.cells[0].innerText === 'children'); return [article.dataset.period, Number(row.cells[1].innerText)];",
    )
    .await;
    assert_eq!(
        shown_children,
        json!([latest["period"], profile["content"]["scale"]["children"]])
    );
    assert_eq!(
        attribute(
            &browser,
            "return document.querySelectorAll('#profile-view svg.bars').length >= 8;"
        )
        .await,
        json!(true),
        "the profiles draw their charts"
    );
    browser.screenshot("profiles").await;
    assert_accessible(&browser, "profiles").await;
    browser.choose("#profile-edition", "board").await;
    browser.click("#profiles-form button[type=submit]").await;
    browser
        .wait_until(
            "the board edition",
            "return document.querySelectorAll('#profile-view article.profile[data-edition=board]').length === 2;",
        )
        .await;
    assert_eq!(
        attribute(&browser, "return document.querySelector('#profile-view article .profile-meta').innerText.startsWith('Board edition');").await,
        json!(true)
    );
    assert_accessible(&browser, "profiles (board edition)").await;
    let pdf = browser.print_pdf("profiles-board", false).await;
    assert!(pdf.starts_with(b"%PDF"), "a PDF");
    let text = String::from_utf8_lossy(&pdf);
    let pages = text.matches("/Type /Page").count() - text.matches("/Type /Pages").count();
    assert!(
        (1..=16).contains(&pages),
        "two profiles print on a few A4 pages, not {pages}"
    );
    assert!(
        text.contains("/MediaBox [0 0 595") || text.contains("/MediaBox [0 0 594"),
        "A4 pages"
    );

    // The self-assessment: the questions by theme with Atlas's evidence beside those of
    // "understanding what is happening"; the board's answer recorded, then reviewed and
    // recorded again, with the change shown.
    browser.click("nav a[data-page='assessment']").await;
    browser
        .wait_until(
            "the self-assessment's themes and Atlas's evidence",
            "return document.querySelectorAll('#assessment-themes fieldset.theme').length === 5 && document.querySelectorAll('#assessment-themes .atlas-evidence').length === 4;",
        )
        .await;
    browser
        .choose("#rating-understanding-profiled", "amber")
        .await;
    browser
        .type_into(
            "#evidence-understanding-profiled",
            "Quarterly profiles from Atlas since 2025; the voluntary sector does not contribute yet.",
        )
        .await;
    browser
        .click("section[data-question='understanding.profiled'] > button")
        .await;
    browser
        .type_into(
            "li.action[data-question='understanding.profiled'] [data-field=action]",
            "Invite the youth trusts to upload",
        )
        .await;
    browser
        .type_into(
            "li.action[data-question='understanding.profiled'] [data-field=owner]",
            "Partnership business manager",
        )
        .await;
    browser
        .run(
            "document.querySelector(\"li.action[data-question='understanding.profiled'] [data-field=due]\").value = '2027-03-31'; return true;",
            vec![],
        )
        .await;
    browser.click("#assessment-form button[type=submit]").await;
    browser
        .wait_until(
            "the first assessment recorded",
            "return document.getElementById('assessment-status').innerText === 'Recorded as version 1.';",
        )
        .await;
    let assessment = demo
        .get_json(
            "lancashire-analyst",
            &format!("/api/v1/partnerships/{LANCASHIRE}/self-assessment"),
        )
        .await;
    assert_eq!(assessment["latest"]["answers"][0]["rating"], "amber");
    assert_eq!(
        assessment["latest"]["answers"][0]["actions"][0]["due"],
        "2027-03-31"
    );
    browser
        .choose("#rating-understanding-profiled", "green")
        .await;
    browser.click("#assessment-form button[type=submit]").await;
    browser
        .wait_until(
            "the second assessment and its change",
            "return document.getElementById('assessment-status').innerText === 'Recorded as version 2.' && [...document.querySelectorAll('#assessment-summary caption')].some((caption) => caption.innerText.includes('Changes since'));",
        )
        .await;
    browser
        .run(
            "document.querySelector(\"fieldset[data-theme='understanding']\").scrollIntoView(); return true;",
            vec![],
        )
        .await;
    browser.screenshot("self-assessment").await;
    assert_accessible(&browser, "self-assessment").await;

    // The analyst prepares a release of 2025-Q3; they are not offered its approval.
    browser.click("nav a[data-page='comparison']").await;
    browser
        .wait_until("the comparison's releases", "return document.querySelector('#releases [data-status=published]') !== null && !document.getElementById('comparison-page').hidden;")
        .await;
    browser.type_into("#release-period", "2025-Q3").await;
    browser.click("#release-form button[type=submit]").await;
    browser
        .wait_until("the prepared release", "return [...document.querySelectorAll('#releases tbody tr')].some((row) => row.innerText.includes('2025-Q3') && row.querySelector('[data-status=awaiting_approval]'));")
        .await;
    assert_eq!(
        attribute(&browser, "return document.querySelector(\"#releases button[aria-label='Approve the 2025-Q3 release']\") === null;").await,
        json!(true),
        "the preparer cannot approve their own release"
    );

    // A second analyst approves it.
    switch_user(&browser, "lancashire-analyst", "lancashire-approver").await;
    browser.click("nav a[data-page='comparison']").await;
    browser
        .click("#releases button[aria-label='Approve the 2025-Q3 release']")
        .await;
    browser
        .wait_until("the approved release", "return [...document.querySelectorAll('#releases tbody tr')].some((row) => row.innerText.includes('2025-Q3') && row.querySelector('[data-status=published]'));")
        .await;

    // An agency analyst uploads a small extract and watches the progress bar reach the end.
    let extract = dir.path().join("preston-update.csv");
    let mut csv =
        String::from("subject,record_kind,occurred_on,lat,lon,location_role,indicators,age,sex\n");
    for row in 0..39 {
        csv.push_str(&format!(
            "{:064x},incident,2025-0{}-1{},53.7590,-2.6990,incident,missing,14,F\n",
            row + 1,
            row % 9 + 1,
            row % 9
        ));
    }
    csv.push_str(&format!(
        "{:064x},shoplifting,2025-03-01,53.7590,-2.6990,incident,,14,F\n",
        99
    ));
    std::fs::write(&extract, csv).expect("the extract is written");
    switch_user(&browser, "lancashire-approver", "lancashire-constabulary").await;
    browser
        .wait_until("the upload page with its batches", "return !document.getElementById('upload-page').hidden && document.querySelectorAll('#batches tbody tr').length === 1;")
        .await;
    // A file of bad rows is refused whole, and its full rejection report comes with it.
    let refused = dir.path().join("bad-rows.csv");
    let mut bad = String::from(
        "subject,record_kind,occurred_on,lat,lon
",
    );
    for row in 0..7 {
        bad.push_str(&format!(
            "{:064x},burglary,2025-02-0{},53.7590,-2.6990
",
            row + 500,
            row + 1
        ));
    }
    std::fs::write(&refused, bad).expect("the refused extract is written");
    browser
        .type_into("#upload-file", &refused.display().to_string())
        .await;
    browser.click("#upload-button").await;
    browser
        .wait_until(
            "the refusal and its report",
            "return document.getElementById('upload-status').textContent.includes('was refused') && document.querySelector('#refusal-report button') !== null && document.querySelector('#refusal-report button').textContent.includes('7 rows');",
        )
        .await;
    assert_accessible(&browser, "upload (refused)").await;
    browser
        .run(
            "document.getElementById('upload-file').value = ''; return true;",
            vec![],
        )
        .await;
    browser
        .type_into("#upload-file", &extract.display().to_string())
        .await;
    browser.click("#upload-button").await;
    browser
        .wait_until(
            "the batch summary",
            "return !document.getElementById('upload-summary').hidden;",
        )
        .await;
    assert_eq!(
        attribute(
            &browser,
            "const bar = document.getElementById('upload-progress'); return bar.value === bar.max;"
        )
        .await,
        json!(true),
        "the progress bar reached the end"
    );
    let stored = attribute(&browser, "return document.querySelector(\"#summary-body td[data-field='Rows stored']\").textContent;").await;
    assert_eq!(stored, json!("39"));
    let rejected = attribute(&browser, "return document.querySelector(\"#summary-body td[data-field='Rows rejected']\").textContent;").await;
    assert_eq!(rejected, json!("1"));
    browser
        .wait_until(
            "the new batch listed",
            "return document.querySelectorAll('#batches tbody tr').length === 2;",
        )
        .await;
    browser.screenshot("upload").await;
    assert_accessible(&browser, "upload").await;
    assert_fits_a_phone(
        &browser,
        "upload",
        "return !document.getElementById('upload-page').hidden && document.querySelectorAll('#batches tbody tr').length === 2;",
    )
    .await;

    // It corrects that batch with a new file (the old one is superseded), then withdraws the
    // correction after confirming.
    let first = attribute(
        &browser,
        "return document.querySelector(\"#summary-body td[data-field='Batch']\").textContent;",
    )
    .await;
    let first = first.as_str().expect("a batch id").to_owned();
    let corrected = dir.path().join("preston-corrected.csv");
    let text = std::fs::read_to_string(&extract).expect("the extract is read");
    std::fs::write(
        &corrected,
        text.lines().take(30).collect::<Vec<_>>().join("\n") + "\n",
    )
    .expect("the correction is written");
    browser
        .click(&format!(
            "#batches button[aria-label='Correct batch {first}']"
        ))
        .await;
    browser
        .type_into("#upload-file", &corrected.display().to_string())
        .await;
    browser.click("#upload-button").await;
    browser
        .wait_until("the superseded batch", &format!("return [...document.querySelectorAll('#batches tbody tr')].some((row) => row.innerText.includes('{}') && row.innerText.includes('superseded'));", &first[..8]))
        .await;
    let second = attribute(
        &browser,
        "return document.querySelector(\"#summary-body td[data-field='Batch']\").textContent;",
    )
    .await;
    let second = second.as_str().expect("a batch id").to_owned();
    assert_ne!(first, second);
    browser
        .click(&format!(
            "#batches button[aria-label='Withdraw batch {second}']"
        ))
        .await;
    browser
        .client
        .accept_alert()
        .await
        .expect("the withdrawal is confirmed");
    browser
        .wait_until("the withdrawn batch", &format!("return [...document.querySelectorAll('#batches tbody tr')].some((row) => row.innerText.includes('{}') && row.innerText.includes('withdrawn'));", &second[..8]))
        .await;

    // Agency analysts read their partnership's counts on the map, but not its analyses.
    browser.click("nav a[data-page='map']").await;
    browser
        .wait_until(
            "the agency analyst's map",
            "return Number(document.getElementById('map').dataset.cells || 0) > 0;",
        )
        .await;
    assert_eq!(
        attribute(&browser, "return [...document.querySelectorAll('#layer option')].filter((option) => !option.disabled).map((option) => option.value);").await,
        json!(["subjects", "records"])
    );

    // A partner viewer reads Lancashire's published release, and has no cell-level page.
    switch_user(&browser, "lancashire-constabulary", "blackpool-viewer").await;
    browser
        .wait_until("Lancashire's releases", "return document.querySelector(\"#partner-releases [data-sharer='E10000017'] [data-status=published]\") !== null;")
        .await;
    let pages = attribute(
        &browser,
        "return [...document.querySelectorAll('#nav a')].map((link) => link.dataset.page);",
    )
    .await;
    assert_eq!(
        pages,
        json!(["partner", "requests"]),
        "a partner viewer's pages are the partner releases and its requests"
    );
    assert_eq!(
        attribute(&browser, "return document.querySelectorAll(\"#partner-releases [data-sharer='E10000017'] [data-status=published]\").length;").await,
        json!(2),
        "the demo's release and the one approved above"
    );
    browser
        .click("#partner-releases [data-sharer='E10000017'] button[aria-label$='2025-Q4 release']")
        .await;
    browser
        .wait_until("the release", "return !document.getElementById('release-view').hidden && document.querySelectorAll('#release-body tbody tr').length > 5;")
        .await;
    let release = attribute(
        &browser,
        "return document.getElementById('release-body').innerText;",
    )
    .await;
    let release = release.as_str().unwrap_or_default();
    assert!(release.contains("2025-Q4"), "{release}");
    // The note says what was done to the figures: suppression and perturbation, no rounding.
    assert!(
        !release.contains("nearest") && !release.contains("undefined"),
        "{release}"
    );
    assert!(
        release.contains("Every count of 1 to 5 is shown as c")
            && release.contains("Nothing is rounded")
            && release.contains("moved by at most 2"),
        "{release}"
    );
    browser.screenshot("partner").await;
    assert_accessible(&browser, "partner").await;
    assert_fits_a_phone(
        &browser,
        "partner",
        "return !document.getElementById('partner-page').hidden && document.querySelectorAll('#partner-page table').length > 0;",
    )
    .await;
    browser
        .run("window.location.hash = 'map'; return true;", vec![])
        .await;
    browser
        .wait_until("the refusal", "return !document.getElementById('no-page').hidden && document.getElementById('map-page').hidden;")
        .await;
    let cells_fetched = attribute(&browser, "return performance.getEntriesByType('resource').map((entry) => entry.name).filter((name) => /\\/(grid|hotspots|emerging)\\?/.test(name));").await;
    assert_eq!(
        cells_fetched,
        json!([]),
        "the partner viewer's browser asked for no cell-level data"
    );

    // The partner viewer asks Lancashire for a summary of 2025-Q4 by agency kind.
    browser.click("nav a[data-page='requests']").await;
    browser
        .wait_until(
            "the request form",
            "return document.querySelectorAll('#request-owner option').length > 0 && !document.getElementById('request-form').hidden;",
        )
        .await;
    ask_for_summary(
        &browser,
        LANCASHIRE,
        "Blackpool and Lancashire CSE sub-group",
    )
    .await;
    browser
        .wait_until(
            "the request sent",
            "return document.querySelector('#requests-outgoing [data-state=open]') !== null;",
        )
        .await;
    assert_accessible(&browser, "requests (partner viewer)").await;

    // Rochdale's analyst asks the demo's regional group (Lancashire, Blackpool and Rochdale):
    // one request goes to each of the other two, and the page follows their answers (and
    // Rochdale's own, from its own releases).
    switch_user(&browser, "blackpool-viewer", "rochdale-analyst").await;
    browser.click("nav a[data-page='requests']").await;
    browser
        .wait_until(
            "the regional group offered",
            "return [...document.querySelectorAll('#request-owner option')].some((option) => option.value === 'group:North West demo group');",
        )
        .await;
    ask_for_summary(
        &browser,
        "group:North West demo group",
        "North West CSE network, quarterly picture",
    )
    .await;
    browser
        .wait_until(
            "the regional request listed",
            "return (document.getElementById('regional-requests').textContent || '').includes('Waiting for E06000009, E10000017');",
        )
        .await;
    browser
        .click("#regional-requests button[aria-label^='Follow the regional request to North West demo group']")
        .await;
    browser
        .wait_until(
            "each member's answer",
            "return document.querySelectorAll('#regional-summary tbody tr').length === 3;",
        )
        .await;
    assert_accessible(&browser, "requests (regional)").await;

    // An auditor sees the trail, including the analyst's map requests, and the chain verifies.
    switch_user(&browser, "rochdale-analyst", "auditor").await;
    browser
        .wait_until("the audit trail", "return document.getElementById('chain').dataset.intact === 'true' && document.querySelectorAll('#audit-entries tbody tr').length > 10;")
        .await;
    browser.screenshot("audit").await;
    assert_accessible(&browser, "audit").await;
    assert_fits_a_phone(
        &browser,
        "audit",
        "return document.querySelectorAll('#audit-entries tbody tr').length > 10;",
    )
    .await;
    // Filtered by action: the two approvals, the demo's and the one made in the page above.
    browser.type_into("#audit-action", "release.approve").await;
    browser.click("#audit-form button[type=submit]").await;
    browser
        .wait_until(
            "the filtered trail",
            "const rows = [...document.querySelectorAll('#audit-entries tbody tr')]; return rows.length > 0 && rows.every((row) => row.children[5].textContent === 'release.approve');",
        )
        .await;
    let approvers = attribute(&browser, "return [...document.querySelectorAll('#audit-entries tbody tr')].map((row) => row.children[2].textContent).sort();").await;
    assert_eq!(
        approvers,
        json!(["demo:lancashire-approver", "demo:lancashire-approver"])
    );

    // A board member reads the board edition of the profiles and the self-assessment, and
    // nothing else: no edition to choose, nothing to generate or record, no exact count fetched.
    switch_user(&browser, "auditor", "lancashire-board").await;
    browser
        .wait_until(
            "the board edition of the profiles",
            "return document.querySelectorAll('#profile-view article.profile[data-edition=board]').length === 2 && document.getElementById('profile-generate-form').offsetParent === null && document.getElementById('profile-edition').offsetParent === null;",
        )
        .await;
    assert_eq!(
        attribute(
            &browser,
            "return [...document.querySelectorAll('#nav a')].map((link) => link.dataset.page);"
        )
        .await,
        json!(["profiles", "assessment"])
    );
    assert_accessible(&browser, "profiles (board member)").await;
    browser.click("nav a[data-page='assessment']").await;
    browser
        .wait_until(
            "the self-assessment, read only",
            "return document.querySelectorAll('#assessment-themes fieldset.theme[disabled]').length === 5 && document.getElementById('assessment-record').offsetParent === null;",
        )
        .await;
    assert_accessible(&browser, "self-assessment (board member)").await;
    let exact = attribute(&browser, "return performance.getEntriesByType('resource').map((entry) => entry.name).filter((name) => /\\/profiles\\/[0-9]{4}-Q[1-4]\\?/.test(name));").await;
    assert_eq!(
        exact,
        json!([]),
        "the board member's browser asked for no own edition"
    );
    // On a phone (390 × 844), both pages fit the screen's width: no sideways scrolling.
    for page in ["assessment", "profiles"] {
        assert_fits_a_phone(
            &browser,
            page,
            &format!("return !document.getElementById('{page}-page').hidden && document.querySelectorAll('#{page}-page article, #{page}-page fieldset').length > 0 && !document.getElementById('profiles-status').innerText.startsWith('Loading');"),
        )
        .await;
    }

    // Lancashire's analyst accepts the request: 2025-Q4's release is published already, so the
    // request is answered at once, and the partner viewer reads it.
    switch_user(&browser, "lancashire-board", "lancashire-analyst").await;
    browser
        .wait_until(
            "what is waiting for Lancashire's analyst",
            "return !document.getElementById('waiting').hidden && document.querySelectorAll('#waiting [data-kind=request_to_answer]').length === 2;",
        )
        .await;
    browser.click("nav a[data-page='requests']").await;
    browser
        .click("#requests-incoming button[aria-label^='Accept the request from E06000009']")
        .await;
    browser
        .wait_until(
            "the request answered",
            "return document.querySelector('#requests-incoming [data-state=answered]') !== null;",
        )
        .await;
    browser.screenshot("requests").await;
    assert_accessible(&browser, "requests (owner)").await;
    assert_fits_a_phone(
        &browser,
        "requests",
        "return document.querySelector('#requests-incoming [data-state=answered]') !== null;",
    )
    .await;
    assert_fits_a_phone(
        &browser,
        "comparison",
        "return !document.getElementById('comparison-page').hidden && document.querySelectorAll('#comparison-page table').length > 0;",
    )
    .await;
    assert_fits_a_phone(
        &browser,
        "map",
        "return !document.getElementById('map-page').hidden && Number(document.getElementById('map').dataset.cells) > 0;",
    )
    .await;
    switch_user(&browser, "lancashire-analyst", "blackpool-viewer").await;
    browser
        .wait_until(
            "the answer waiting for Blackpool's viewer",
            "return document.querySelectorAll('#waiting [data-kind=answer_ready]').length === 1;",
        )
        .await;
    browser.click("nav a[data-page='requests']").await;
    browser
        .click("#requests-outgoing button[aria-label='Read 2025-Q4: the release of E10000017']")
        .await;
    browser
        .wait_until(
            "the answering release",
            "return document.querySelectorAll('#request-release table').length >= 2;",
        )
        .await;
    assert_accessible(&browser, "requests (answered)").await;
    assert_within_csp(&browser, "partner viewer").await;
    browser.close().await;
}
