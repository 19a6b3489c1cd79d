//! `runconfig::image` accepts exactly what `oci-spec`'s reference parser (which it
//! replaced, see the module's docs) accepts over ASCII, and splits it the same way.
//! Two differences on purpose. A name (registry and repository) over 255 characters is
//! refused, as the distribution project, Docker and containerd refuse it; oci-spec counts
//! only the repository. And a first component with an uppercase letter
//! (`Registry/app`) is a registry to us, as to Docker and containerd, and part of a Docker
//! Hub repository to oci-spec. Generated from the characters and pieces references are
//! made of, so that most cases come close to valid ones.

use std::str::FromStr;

use oci_spec::distribution::Reference;
use proptest::prelude::*;
use runconfig::image::ImageReference;

fn piece() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("ghcr.io".to_owned()),
        Just("localhost".to_owned()),
        Just("index.docker.io".to_owned()),
        Just(":5000".to_owned()),
        Just(":".to_owned()),
        Just("/".to_owned()),
        Just("@".to_owned()),
        Just("sha256:".to_owned()),
        Just("sha512:".to_owned()),
        Just("md5:".to_owned()),
        Just("a".repeat(64)),
        Just("0".repeat(32)),
        Just("__".to_owned()),
        Just("--".to_owned()),
        "[a-z0-9]{1,6}",
        "[A-Za-z0-9._-]{1,4}",
        "[ -~]",
    ]
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 20_000,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn agrees_with_oci_spec(pieces in proptest::collection::vec(piece(), 1..8)) {
        let text: String = pieces.concat();
        let ours = ImageReference::parse(&text);
        let theirs = Reference::from_str(&text);
        match (&ours, &theirs) {
            (Err(runconfig::image::ImageReferenceError::NameTooLong(_)), Ok(_))
            | (Ok(_), Err(oci_spec::distribution::ParseError::NameTooLong)) => {}
            (Ok(ours), Ok(_)) if ours.registry().bytes().any(|b| b.is_ascii_uppercase()) => {}
            (Ok(ours), Ok(theirs)) => {
                prop_assert_eq!(ours.registry(), theirs.registry(), "{}", text);
                prop_assert_eq!(ours.repository(), theirs.repository(), "{}", text);
                prop_assert_eq!(ours.tag(), theirs.tag(), "{}", text);
                prop_assert_eq!(ours.digest(), theirs.digest(), "{}", text);
            }
            (Err(_), Err(_)) => {}
            _ => prop_assert!(false, "{:?}: ours {:?}, oci-spec {:?}", text, ours, theirs),
        }
    }
}
