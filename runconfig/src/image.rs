//! OCI image references, `[registry[:port]/]repository[:tag][@algorithm:hex]`, by the
//! grammar of the distribution project's `reference` package (which registries, Docker and
//! Kubernetes follow).
//!
//! Written here instead of `oci-spec`'s `distribution::Reference`: its parser is one
//! regular expression whose tag class is Unicode `\w` repeated up to 128 times, which
//! the `regex` crate compiles into an automaton of about 15 MiB the first time any image
//! is parsed. That was most of the operator's peak heap (heaptrack, 1,000 MCPServers)
//! and a step in the proxy's and the webhook's memory at start-up, to check a few
//! characters. Here each part is checked by hand, with an error that names the part.

use std::fmt;

/// The registry a reference without one names (as Docker and Kubernetes resolve it).
const DOCKER_HUB: &str = "docker.io";
/// Docker Hub's older name, read as [`DOCKER_HUB`].
const DOCKER_HUB_LEGACY: &str = "index.docker.io";
/// Where Docker Hub keeps single-component names (`alpine` is `library/alpine`).
const DOCKER_HUB_OFFICIAL: &str = "library";
/// The tag of a reference with neither tag nor digest.
const DEFAULT_TAG: &str = "latest";
/// The longest name (registry and repository), as the distribution project, Docker and
/// containerd allow (`oci-spec` counted only the repository).
const NAME_MAX: usize = 255;
/// The longest tag.
const TAG_MAX: usize = 128;

/// A parsed image reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ImageReference {
    registry: String,
    repository: String,
    tag: Option<String>,
    digest: Option<String>,
}

/// Why text is not an image reference.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ImageReferenceError {
    /// Nothing to parse.
    #[error("the reference is empty")]
    Empty,
    /// The registry and repository are longer than registries accept.
    #[error("the name has {0} characters, more than {NAME_MAX}")]
    NameTooLong(usize),
    /// A part of the repository path breaks its grammar.
    #[error(
        "the repository path component {0:?} must be lowercase letters and digits, separated by '.', '_', '__' or dashes"
    )]
    Repository(String),
    /// The registry host or port is malformed.
    #[error(
        "the registry {0:?} must be a host name (letters, digits, inner dashes, dot-separated) with an optional :port"
    )]
    Registry(String),
    /// The tag breaks its grammar.
    #[error(
        "the tag {0:?} must be 1 to 128 letters, digits, '_', '.' or '-', not starting with '.' or '-'"
    )]
    Tag(String),
    /// The digest is not `algorithm:hex`.
    #[error("the digest {0:?} must be algorithm:hex, such as sha256: and 64 hex digits")]
    Digest(String),
    /// A digest of a known algorithm with the wrong number of hex digits.
    #[error("the {algorithm} digest has {found} hex digits, not {expected}")]
    DigestLength {
        /// The digest's algorithm.
        algorithm: String,
        /// Hex digits it has.
        found: usize,
        /// Hex digits the algorithm produces.
        expected: usize,
    },
    /// An algorithm other than sha256, sha384 and sha512.
    #[error("the digest algorithm {0:?} is not supported (sha256, sha384 or sha512)")]
    DigestAlgorithm(String),
}

impl ImageReference {
    /// Parses `text`.
    pub fn parse(text: &str) -> Result<Self, ImageReferenceError> {
        if text.is_empty() {
            return Err(ImageReferenceError::Empty);
        }
        let (rest, digest) = match text.split_once('@') {
            Some((rest, digest)) => (rest, Some(check_digest(digest)?)),
            None => (text, None),
        };
        // A tag's colon comes after the last slash; a port's before it.
        let after_slash = rest.rfind('/').map_or(0, |i| i + 1);
        let (name, tag) = match rest[after_slash..].rfind(':') {
            Some(i) => {
                let at = after_slash + i;
                (&rest[..at], Some(check_tag(&rest[at + 1..])?))
            }
            None => (rest, None),
        };
        if name.len() > NAME_MAX {
            return Err(ImageReferenceError::NameTooLong(name.len()));
        }
        let (registry, path) = split_registry(name)?;
        let tag = match (tag, &digest) {
            (None, None) => Some(DEFAULT_TAG.to_owned()),
            (tag, _) => tag.map(str::to_owned),
        };
        Ok(Self {
            registry,
            repository: path,
            tag,
            digest,
        })
    }

    /// The registry, `docker.io` when the reference names none.
    pub fn registry(&self) -> &str {
        &self.registry
    }

    /// The repository within the registry (`library/alpine` for Docker Hub's `alpine`).
    pub fn repository(&self) -> &str {
        &self.repository
    }

    /// The tag: the one written, `latest` when neither tag nor digest is.
    pub fn tag(&self) -> Option<&str> {
        self.tag.as_deref()
    }

    /// The digest, `algorithm:hex`.
    pub fn digest(&self) -> Option<&str> {
        self.digest.as_deref()
    }
}

impl fmt::Display for ImageReference {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.registry, self.repository)?;
        if let Some(tag) = &self.tag {
            write!(f, ":{tag}")?;
        }
        if let Some(digest) = &self.digest {
            write!(f, "@{digest}")?;
        }
        Ok(())
    }
}

impl std::str::FromStr for ImageReference {
    type Err = ImageReferenceError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

/// The registry and the repository path of `name`.
///
/// The name must read either as path components alone or as a registry followed by path
/// components (the grammar's optional registry). Which it is decides, as in Docker and
/// containerd, the first component: a registry when it looks like a host (a dot, a
/// port, `localhost`, or an uppercase letter, which no repository has); otherwise the
/// whole name is a Docker Hub repository. (`oci-spec` reads `Registry/app` as a Docker
/// Hub repository with an uppercase letter instead.)
fn split_registry(name: &str) -> Result<(String, String), ImageReferenceError> {
    let first_bad_component = |path: &str| {
        path.split('/')
            .find(|c| !is_path_component(c))
            .map(str::to_owned)
    };
    let split = name.split_once('/');
    if let Some(bad) = first_bad_component(name) {
        // Not path components alone: a registry and path components, or nothing.
        match split {
            Some((first, path)) if check_registry(first).is_ok() => {
                if let Some(bad) = first_bad_component(path) {
                    return Err(ImageReferenceError::Repository(bad));
                }
            }
            Some((first, _)) if first.contains(['.', ':']) => {
                return Err(ImageReferenceError::Registry(first.to_owned()));
            }
            _ => return Err(ImageReferenceError::Repository(bad)),
        }
    }
    let (registry, path) = match split {
        Some((first, path))
            if first.contains(['.', ':'])
                || first == "localhost"
                || first.bytes().any(|b| b.is_ascii_uppercase()) =>
        {
            let registry = if first == DOCKER_HUB_LEGACY {
                DOCKER_HUB
            } else {
                first
            };
            (registry, path)
        }
        _ => (DOCKER_HUB, name),
    };
    let path = if registry == DOCKER_HUB && !path.contains('/') {
        format!("{DOCKER_HUB_OFFICIAL}/{path}")
    } else {
        path.to_owned()
    };
    Ok((registry.to_owned(), path))
}

/// `host[:port]`: dot-separated labels of letters, digits and inner dashes.
fn check_registry(registry: &str) -> Result<(), ImageReferenceError> {
    let (host, port) = match registry.split_once(':') {
        Some((host, port)) => (host, Some(port)),
        None => (registry, None),
    };
    let label_ok = |label: &str| {
        let bytes = label.as_bytes();
        !bytes.is_empty()
            && bytes
                .iter()
                .all(|b| b.is_ascii_alphanumeric() || *b == b'-')
            && bytes[0] != b'-'
            && bytes[bytes.len() - 1] != b'-'
    };
    let port_ok = port.is_none_or(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if host.split('.').all(label_ok) && port_ok {
        Ok(())
    } else {
        Err(ImageReferenceError::Registry(registry.to_owned()))
    }
}

/// `[a-z0-9]+` runs joined by `.`, `_`, `__` or any number of `-`.
fn is_path_component(component: &str) -> bool {
    let bytes = component.as_bytes();
    let alnum = |b: &u8| b.is_ascii_lowercase() || b.is_ascii_digit();
    if bytes.is_empty() || !alnum(&bytes[0]) || !alnum(&bytes[bytes.len() - 1]) {
        return false;
    }
    let mut separator = String::new();
    for &b in bytes {
        if alnum(&b) {
            let ok = matches!(separator.as_str(), "" | "." | "_" | "__")
                || separator.bytes().all(|s| s == b'-');
            if !ok {
                return false;
            }
            separator.clear();
        } else if matches!(b, b'.' | b'_' | b'-') {
            separator.push(b as char);
        } else {
            return false;
        }
    }
    true
}

/// `[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`.
fn check_tag(tag: &str) -> Result<&str, ImageReferenceError> {
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let ok = tag.len() <= TAG_MAX
        && tag.bytes().next().is_some_and(word)
        && tag.bytes().all(|b| word(b) || b == b'.' || b == b'-');
    if ok {
        Ok(tag)
    } else {
        Err(ImageReferenceError::Tag(tag.to_owned()))
    }
}

/// `algorithm:hex` with an algorithm of the right length: sha256, sha384 or sha512.
fn check_digest(digest: &str) -> Result<String, ImageReferenceError> {
    let malformed = || ImageReferenceError::Digest(digest.to_owned());
    let (algorithm, hex) = digest.split_once(':').ok_or_else(malformed)?;
    let algorithm_ok = algorithm.split(['-', '_', '+', '.']).all(|part| {
        part.bytes().next().is_some_and(|b| b.is_ascii_alphabetic())
            && part.bytes().all(|b| b.is_ascii_alphanumeric())
    });
    if !algorithm_ok || hex.len() < 32 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
        return Err(malformed());
    }
    let expected = match algorithm {
        "sha256" => 64,
        "sha384" => 96,
        "sha512" => 128,
        other => return Err(ImageReferenceError::DigestAlgorithm(other.to_owned())),
    };
    if hex.len() != expected {
        return Err(ImageReferenceError::DigestLength {
            algorithm: algorithm.to_owned(),
            found: hex.len(),
            expected,
        });
    }
    Ok(digest.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn registries_repositories_tags_and_digests_are_told_apart() {
        let digest = format!("sha256:{}", "a".repeat(64));
        let cases = [
            (
                "alpine".to_owned(),
                "docker.io",
                "library/alpine",
                Some("latest"),
                None,
            ),
            (
                "org/server:1.0".to_owned(),
                "docker.io",
                "org/server",
                Some("1.0"),
                None,
            ),
            (
                "ghcr.io/stacklok/toolhive/fetch:v0.1_rc.2".to_owned(),
                "ghcr.io",
                "stacklok/toolhive/fetch",
                Some("v0.1_rc.2"),
                None,
            ),
            (
                "localhost:5000/a/b".to_owned(),
                "localhost:5000",
                "a/b",
                Some("latest"),
                None,
            ),
            (
                "localhost/a".to_owned(),
                "localhost",
                "a",
                Some("latest"),
                None,
            ),
            (
                "Registry/app".to_owned(),
                "Registry",
                "app",
                Some("latest"),
                None,
            ),
            // Not a valid host, yet valid path components: accepted (as oci-spec and
            // Docker do), and the dot makes it the registry.
            (
                "0_0index.docker.io/aaa".to_owned(),
                "0_0index.docker.io",
                "aaa",
                Some("latest"),
                None,
            ),
            (
                "index.docker.io/library/redis".to_owned(),
                "docker.io",
                "library/redis",
                Some("latest"),
                None,
            ),
            (
                format!("registry.example.com:443/team/mcp@{digest}"),
                "registry.example.com:443",
                "team/mcp",
                None,
                Some(digest.as_str()),
            ),
            (
                format!("my-reg.EXAMPLE.com/a.b__c---d/e_f:Tag@{digest}"),
                "my-reg.EXAMPLE.com",
                "a.b__c---d/e_f",
                Some("Tag"),
                Some(digest.as_str()),
            ),
        ];
        for (text, registry, repository, tag, digest) in cases {
            let r = ImageReference::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
            assert_eq!(
                (r.registry(), r.repository(), r.tag(), r.digest()),
                (registry, repository, tag, digest),
                "{text}"
            );
        }
    }

    /// Whether an error is the one expected.
    type Expect = fn(&ImageReferenceError) -> bool;

    #[test]
    fn each_broken_part_is_named() {
        use ImageReferenceError as E;
        let cases: Vec<(String, Expect)> = vec![
            (String::new(), |e| *e == E::Empty),
            (
                "ghcr.io/org/server:bad tag".into(),
                |e| matches!(e, E::Tag(t) if t == "bad tag"),
            ),
            ("ghcr.io/org/server:.x".into(), |e| matches!(e, E::Tag(_))),
            (format!("a:{}", "t".repeat(129)), |e| matches!(e, E::Tag(_))),
            (
                "ghcr.io/Org/server".into(),
                |e| matches!(e, E::Repository(c) if c == "Org"),
            ),
            (
                "org//server".into(),
                |e| matches!(e, E::Repository(c) if c.is_empty()),
            ),
            ("a_-b".into(), |e| matches!(e, E::Repository(_))),
            ("a___b".into(), |e| matches!(e, E::Repository(_))),
            ("a.".into(), |e| matches!(e, E::Repository(_))),
            ("ghcr.io/".into(), |e| matches!(e, E::Repository(_))),
            ("-bad.io/a".into(), |e| matches!(e, E::Registry(_))),
            ("bad.io:port/a".into(), |e| matches!(e, E::Registry(_))),
            ("a@sha256:abc".into(), |e| matches!(e, E::Digest(_))),
            (
                format!("a@md5:{}", "a".repeat(32)),
                |e| matches!(e, E::DigestAlgorithm(a) if a == "md5"),
            ),
            (format!("a@sha256:{}", "a".repeat(40)), |e| {
                matches!(
                    e,
                    E::DigestLength {
                        found: 40,
                        expected: 64,
                        ..
                    }
                )
            }),
            (format!("{}/a", "r".repeat(256)), |e| {
                matches!(e, E::NameTooLong(258))
            }),
            ("ghcr.io/é".into(), |e| matches!(e, E::Repository(_))),
            ("a:é".into(), |e| matches!(e, E::Tag(_))),
        ];
        for (text, expected) in cases {
            match ImageReference::parse(&text) {
                Ok(r) => panic!("{text:?} parsed as {r}"),
                Err(e) => assert!(expected(&e), "{text:?}: {e:?}"),
            }
        }
    }

    #[test]
    fn displayed_in_full() {
        assert_eq!(
            ImageReference::parse("alpine").map(|r| r.to_string()),
            Ok("docker.io/library/alpine:latest".to_owned())
        );
    }
}
