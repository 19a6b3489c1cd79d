//! The validate stage: map the MCPServer (with what was dereferenced) to its RunConfig
//! and run the one shared validation. Pure: it yields the validated RunConfig, which the
//! build stage serialises.

use admission::{Finding, MissingReference};
use api::MCPServer;
use runconfig::RunConfig;

use super::dereference::Dereferenced;

/// A RunConfig the shared validation accepted, with every reference present. Only
/// [`check`] makes one, so the build stage cannot write an unchecked configuration.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidRunConfig(Box<RunConfig>);

impl ValidRunConfig {
    /// The configuration.
    pub fn config(&self) -> &RunConfig {
        &self.0
    }
}

/// What the validate stage decided.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// Ready to build.
    Valid(ValidRunConfig),
    /// A referenced object does not exist (yet): wait for it rather than run without it.
    Waiting(Vec<MissingReference>),
    /// The spec cannot run; each finding names the CRD field, the reason and what is wrong.
    Invalid(Vec<Finding>),
}

/// Maps and validates `server` with the admission webhook's own function, so the status
/// says exactly what the webhook would have said.
pub fn check(server: &MCPServer, refs: &Dereferenced) -> Outcome {
    outcome(admission::map_and_validate(server, &refs.references()))
}

/// The decision on a mapped and validated object (an MCPServer or an MCPRemoteProxy).
pub fn outcome(checked: admission::CheckedServer) -> Outcome {
    if !checked.problems.is_empty() {
        return Outcome::Invalid(
            checked
                .problems
                .iter()
                .map(admission::Problem::finding)
                .collect(),
        );
    }
    if !checked.mapped.missing.is_empty() {
        return Outcome::Waiting(checked.mapped.missing);
    }
    Outcome::Valid(ValidRunConfig(Box::new(checked.mapped.config)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::controllers::mcpserver::build::fixtures::{MINIMAL, server};
    use crate::controllers::mcpserver::build::render;

    #[test]
    fn valid_spec_yields_runconfig_and_stable_checksum() {
        let Outcome::Valid(valid) = check(&server(MINIMAL), &Dereferenced::default()) else {
            panic!("valid")
        };
        let rendered = render(&valid);
        assert!(
            rendered
                .json
                .contains("\"image\": \"ghcr.io/stackloklabs/gofetch/server:1.0.1\"")
        );
        let Outcome::Valid(again) = check(&server(MINIMAL), &Dereferenced::default()) else {
            panic!("valid")
        };
        assert_eq!(rendered.checksum, render(&again).checksum);
    }

    #[test]
    fn invalid_spec_names_crd_fields() {
        let bad = server(&MINIMAL.replace("spec: {", "spec: {endpointPrefix: nope, "));
        let Outcome::Invalid(findings) = check(&bad, &Dereferenced::default()) else {
            panic!("invalid")
        };
        assert!(
            findings[0].to_string().starts_with("spec.endpointPrefix: "),
            "{findings:?}"
        );
        assert_eq!(findings[0].path, "spec.endpointPrefix");
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
        assert_eq!(missing[0].kind.as_str(), "MCPOIDCConfig");
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
