//! Field-for-field parity with ToolHive's CRDs at the version the benchmarks pin
//! (`e2e/cluster/toolhive.sh`, fetched from the Go module proxy): every field of theirs
//! exists here with the same name, type, enum values and default, or is a deliberate
//! deviation listed with its reason in `docs/decisions.md`. Prints every difference.

use e2e::parity::{self, DEVIATIONS_HEADING};

#[test]
fn every_toolhive_field_is_here_or_a_listed_deviation() {
    let module = parity::toolhive_module().expect("ToolHive's Go module downloads");
    let theirs = parity::load_crds(&module.join("deploy/charts/operator-crds/files/crds"))
        .expect("ToolHive's CRDs load");
    let ours = parity::load_crds(&e2e::repo_root().join("config/crd/bases"))
        .expect("our generated CRDs load");
    let decisions = std::fs::read_to_string(e2e::repo_root().join("docs/decisions.md"))
        .expect("docs/decisions.md reads");
    let deviations = parity::parse_deviations(&decisions).expect("the deviation table parses");

    let differences = parity::compare(&theirs, &ours);
    println!(
        "ToolHive {} ({} kinds) against ours ({} kinds): {} differences",
        module.display(),
        theirs.len(),
        ours.len(),
        differences.len()
    );
    for difference in &differences {
        match deviations.iter().find(|row| row.covers(difference)) {
            Some(row) => println!("  listed   {difference}: {}", row.reason),
            None => println!("  UNLISTED {difference}"),
        }
    }
    let (uncovered, stale) = parity::unexplained(&differences, &deviations);
    let mut problems = Vec::new();
    for difference in uncovered {
        problems.push(format!(
            "{difference}: not in the table \"{DEVIATIONS_HEADING}\" of docs/decisions.md; match ToolHive or list it with the reason"
        ));
    }
    for row in stale {
        problems.push(format!(
            "{} `{}` {:?}: listed as a deviation but no longer differs; remove the row",
            row.kind, row.path, row.what
        ));
    }
    assert!(problems.is_empty(), "\n{}", problems.join("\n"));
}
