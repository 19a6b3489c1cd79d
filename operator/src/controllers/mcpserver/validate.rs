//! The validate stage: map the MCPServer (with what was dereferenced) to its RunConfig
//! and run the one shared validation. Pure.

use admission::MissingReference;
use api::MCPServer;

use super::dereference::{Dereferenced, hash};

/// What the validate stage decided.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Ready to build: the RunConfig JSON and its checksum.
    Valid {
        /// The RunConfig the proxy will read.
        runconfig_json: String,
        /// SHA-256 of `runconfig_json`.
        checksum: String,
    },
    /// A referenced object does not exist (yet): wait for it rather than run without it.
    Waiting(Vec<MissingReference>),
    /// The spec cannot run; each message names the CRD field.
    Invalid(Vec<String>),
}

/// Maps and validates `server` with the admission webhook's own function, so the status
/// says exactly what the webhook would have said.
pub fn check(server: &MCPServer, refs: &Dereferenced) -> Outcome {
    let checked = admission::map_and_validate(server, &refs.references());
    if !checked.problems.is_empty() {
        return Outcome::Invalid(
            checked
                .problems
                .iter()
                .map(|(location, v)| admission::Finding::from_violation(location, v).to_string())
                .collect(),
        );
    }
    if !checked.mapped.missing.is_empty() {
        return Outcome::Waiting(checked.mapped.missing);
    }
    let json = String::from_utf8_lossy(&runconfig::to_json(&checked.mapped.config)).into_owned();
    let checksum = hash(&json).unwrap_or_default();
    Outcome::Valid {
        runconfig_json: json,
        checksum,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpserver::build::fixtures::{MINIMAL, server};

    #[test]
    fn valid_spec_yields_runconfig_and_stable_checksum() {
        let Outcome::Valid {
            runconfig_json,
            checksum,
        } = check(&server(MINIMAL), &Dereferenced::default())
        else {
            panic!("valid")
        };
        assert!(
            runconfig_json.contains("\"image\": \"ghcr.io/stackloklabs/gofetch/server:1.0.1\"")
        );
        let Outcome::Valid {
            checksum: again, ..
        } = check(&server(MINIMAL), &Dereferenced::default())
        else {
            panic!("valid")
        };
        assert_eq!(checksum, again);
    }

    #[test]
    fn invalid_spec_names_crd_fields() {
        let bad = server(&MINIMAL.replace("spec: {", "spec: {endpointPrefix: nope, "));
        let Outcome::Invalid(messages) = check(&bad, &Dereferenced::default()) else {
            panic!("invalid")
        };
        assert!(
            messages[0].starts_with("spec.endpointPrefix: "),
            "{messages:?}"
        );
    }

    #[test]
    fn missing_oidc_config_waits_rather_than_failing_for_its_absent_issuer() {
        let waiting = server(&MINIMAL.replace(
            "spec: {",
            "spec: {oidcConfigRef: {name: idp, audience: a}, ",
        ));
        let Outcome::Waiting(missing) = check(&waiting, &Dereferenced::default()) else {
            panic!("waiting")
        };
        assert_eq!(missing[0].kind, "MCPOIDCConfig");
    }

    #[test]
    fn missing_reference_waits() {
        let waiting = server(&MINIMAL.replace("spec: {", "spec: {toolConfigRef: {name: later}, "));
        let Outcome::Waiting(missing) = check(&waiting, &Dereferenced::default()) else {
            panic!("waiting")
        };
        assert_eq!(missing[0].name, "later");
    }
}
