//! docs/access.md prints the policy's matrix; this keeps the two equal, by rendering the
//! matrix from `authorize` and comparing it with the table between the markers in the
//! document. Where a role reads only some of a partnership's records, the cell says whose.

#![expect(clippy::unwrap_used, reason = "a test fails where it unwraps, loudly")]
#![expect(
    clippy::string_slice,
    reason = "tests slice text they built themselves"
)]

use atlas_access::{Action, Principal, RecordScope, Resource, Role, Scope, authorize};
use atlas_domain::GssCode;
use uuid::Uuid;

const DOCUMENT: &str = include_str!("../../../docs/access.md");
const START: &str = "<!-- policy-matrix:start -->";
const END: &str = "<!-- policy-matrix:end -->";

fn code(text: &str) -> GssCode {
    GssCode::parse(text).unwrap()
}

/// Every kind of resource, related to the caller in every way that matters to the policy.
fn relations() -> Vec<(&'static str, Resource)> {
    let (own, other) = (code("E10000017"), code("E06000009"));
    let (own_agency, other_agency) = (Uuid::from_u128(1), Uuid::from_u128(2));
    vec![
        ("instance", Resource::Instance),
        (
            "own partnership",
            Resource::Partnership {
                code: own.clone(),
                shared_scopes: [].into(),
            },
        ),
        (
            "sharing partnership",
            Resource::Partnership {
                code: other.clone(),
                shared_scopes: [Scope::Releases].into(),
            },
        ),
        (
            "other partnership",
            Resource::Partnership {
                code: other.clone(),
                shared_scopes: [].into(),
            },
        ),
        ("own agency", Resource::Agency { id: own_agency }),
        ("other agency", Resource::Agency { id: other_agency }),
        (
            "own agency's batch",
            Resource::Batch {
                agency: own_agency,
                partnerships: [own.clone()].into(),
            },
        ),
        (
            "batch in own partnership",
            Resource::Batch {
                agency: other_agency,
                partnerships: [own].into(),
            },
        ),
        (
            "batch elsewhere",
            Resource::Batch {
                agency: other_agency,
                partnerships: [other].into(),
            },
        ),
    ]
}

fn render() -> String {
    let mut table = String::from("| action |");
    for role in Role::ALL {
        table.push_str(&format!(" `{role}` |"));
    }
    table.push_str("\n|---|");
    table.push_str(&"---|".repeat(Role::ALL.len()));
    table.push('\n');
    for action in Action::ALL {
        table.push_str(&format!("| `{action}` |"));
        for role in Role::ALL {
            let principal = Principal {
                subject: "someone".to_owned(),
                partnership: code("E10000017"),
                agency: Some(Uuid::from_u128(1)),
                roles: [role].into(),
            };
            let allowed: Vec<String> = relations()
                .into_iter()
                .filter_map(|(label, resource)| {
                    let scope = authorize(&principal, action, &resource).ok()?;
                    Some(match (&resource, scope) {
                        (Resource::Partnership { .. }, RecordScope::Agency(_)) => {
                            format!("{label} (own agency's records)")
                        }
                        _ => label.to_owned(),
                    })
                })
                .collect();
            let cell = if allowed.is_empty() {
                "—".to_owned()
            } else {
                allowed.join(", ")
            };
            table.push_str(&format!(" {cell} |"));
        }
        table.push('\n');
    }
    table
}

#[test]
fn the_documented_matrix_is_the_policy() {
    let start = DOCUMENT
        .find(START)
        .expect("docs/access.md has the start marker")
        + START.len();
    let end = DOCUMENT
        .find(END)
        .expect("docs/access.md has the end marker");
    let documented = DOCUMENT[start..end].trim();
    let rendered = render();
    assert_eq!(
        documented,
        rendered.trim(),
        "docs/access.md's matrix differs from the policy; the policy renders as:\n{rendered}"
    );
}
