//! Certificates of the webhook's HTTPS server: a CA and a serving certificate made with
//! rcgen (self-signed mode) or read from a mounted directory (cert-manager mode), and a
//! rustls certificate resolver whose certificate is swapped in place, so rotation needs
//! no restart.
//!
//! Rotation happens at two thirds of a certificate's lifetime: early enough that a
//! missed tick or a slow API server never lets it expire, late enough not to churn.
//! The serving certificate is re-issued by the same CA, so the `caBundle` the API
//! server trusts does not change. When the CA itself is due, the new CA and the previous
//! one are both in the bundle until the next CA rotation, so certificates of either are
//! trusted while replicas catch up.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use arc_swap::ArcSwap;
use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret;
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use tokio_rustls::rustls::crypto::ring::sign::any_supported_type;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;

/// Why certificates could not be made or read.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// rcgen refused the parameters or failed to sign.
    #[error("generating a certificate: {0}")]
    Generate(#[from] rcgen::Error),
    /// The PEM data is not a certificate chain and a private key rustls can use.
    #[error("{what}: {message}")]
    Invalid {
        /// Which data.
        what: String,
        /// What is wrong with it.
        message: String,
    },
    /// A TLS handshake with the server failed (see [`probe`]).
    #[error("TLS handshake with {addr}: {message}")]
    Probe {
        /// Where.
        addr: std::net::SocketAddr,
        /// What failed.
        message: String,
    },
    /// A file of the certificate directory could not be read.
    #[error("reading {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

fn invalid(what: impl fmt::Display, message: impl fmt::Display) -> CertError {
    CertError::Invalid {
        what: what.to_string(),
        message: message.to_string(),
    }
}

/// How long certificates live. Rotation is at two thirds of each lifetime.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Lifetimes {
    /// The CA's.
    pub ca: Duration,
    /// The serving certificate's (never beyond the CA's end).
    pub serving: Duration,
}

impl Default for Lifetimes {
    fn default() -> Self {
        Self {
            ca: Duration::from_secs(10 * 365 * 24 * 3600),
            serving: Duration::from_secs(90 * 24 * 3600),
        }
    }
}

/// Certificates are dated this much before issue, so a peer whose clock is a little
/// behind accepts them at once.
const BACKDATE: Duration = Duration::from_secs(60);

/// When a certificate valid from `issued` to `expires` is due for rotation.
pub fn due(issued: SystemTime, expires: SystemTime) -> SystemTime {
    let lifetime = expires.duration_since(issued).unwrap_or_default();
    issued + lifetime * 2 / 3
}

/// Everything the server and the webhook configuration need, as PEM, with the dates
/// rotation decides on. Kept in an `Opaque` Secret: the chart declares it empty (so that
/// `helm uninstall` removes it), which a `kubernetes.io/tls` Secret cannot be.
#[derive(Clone, PartialEq, Eq)]
pub struct Bundle {
    /// The CAs the API server must trust (`caBundle`): the signing CA first, then the
    /// previous one after a CA rotation.
    pub ca_bundle: String,
    /// The signing CA's certificate.
    pub ca_cert: String,
    ca_key: String,
    /// When the signing CA was issued and when it expires.
    pub ca_issued: SystemTime,
    /// See `ca_issued`.
    pub ca_expires: SystemTime,
    /// The serving certificate.
    pub cert: String,
    key: String,
    /// When the serving certificate was issued and when it expires.
    pub cert_issued: SystemTime,
    /// See `cert_issued`.
    pub cert_expires: SystemTime,
    /// The names (DNS names, IP addresses) the serving certificate is valid for.
    pub names: Vec<String>,
}

impl fmt::Debug for Bundle {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Never the keys.
        f.debug_struct("Bundle")
            .field(
                "ca_issued",
                &humantime::format_rfc3339_seconds(self.ca_issued),
            )
            .field(
                "ca_expires",
                &humantime::format_rfc3339_seconds(self.ca_expires),
            )
            .field(
                "cert_issued",
                &humantime::format_rfc3339_seconds(self.cert_issued),
            )
            .field(
                "cert_expires",
                &humantime::format_rfc3339_seconds(self.cert_expires),
            )
            .field("names", &self.names)
            .finish_non_exhaustive()
    }
}

fn distinguished_name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::OrganizationName, "toolhive.stacklok.dev");
    name.push(DnType::CommonName, common_name);
    name
}

/// The CA's parameters; rebuilt from its key when issuing, so only the key is stored.
fn ca_params(issued: SystemTime, expires: SystemTime) -> CertificateParams {
    let mut params = CertificateParams::default();
    params.distinguished_name = distinguished_name("thv-operator webhook CA");
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params.not_before = (issued - BACKDATE).into();
    params.not_after = expires.into();
    params
}

impl Bundle {
    /// A new CA and a serving certificate for `names`.
    pub fn issue(
        names: &[String],
        lifetimes: Lifetimes,
        now: SystemTime,
    ) -> Result<Self, CertError> {
        let ca_key = KeyPair::generate()?;
        let ca_expires = now + lifetimes.ca;
        let ca_cert = ca_params(now, ca_expires).self_signed(&ca_key)?.pem();
        let mut bundle = Self {
            ca_bundle: ca_cert.clone(),
            ca_cert,
            ca_key: ca_key.serialize_pem(),
            ca_issued: now,
            ca_expires,
            cert: String::new(),
            key: String::new(),
            cert_issued: now,
            cert_expires: now,
            names: Vec::new(),
        };
        bundle.issue_serving(names, lifetimes, now)?;
        Ok(bundle)
    }

    /// Re-issues the serving certificate from the current CA.
    fn issue_serving(
        &mut self,
        names: &[String],
        lifetimes: Lifetimes,
        now: SystemTime,
    ) -> Result<(), CertError> {
        let ca_key = KeyPair::from_pem(&self.ca_key)?;
        let issuer = Issuer::new(ca_params(self.ca_issued, self.ca_expires), ca_key);
        let mut params = CertificateParams::new(names.to_vec())?;
        params.distinguished_name =
            distinguished_name(names.first().map_or("thv-operator-webhook", String::as_str));
        params.key_usages = vec![
            KeyUsagePurpose::DigitalSignature,
            KeyUsagePurpose::KeyEncipherment,
        ];
        params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        params.use_authority_key_identifier_extension = true;
        let expires = (now + lifetimes.serving).min(self.ca_expires);
        params.not_before = (now - BACKDATE).into();
        params.not_after = expires.into();
        let key = KeyPair::generate()?;
        self.cert = params.signed_by(&key, &issuer)?.pem();
        self.key = key.serialize_pem();
        self.cert_issued = now;
        self.cert_expires = expires;
        self.names = names.to_vec();
        Ok(())
    }

    /// The bundle to use from `now` on, when this one is due for rotation (or was made
    /// for other names); `None` when it is still good.
    pub fn renewed(
        &self,
        names: &[String],
        lifetimes: Lifetimes,
        now: SystemTime,
    ) -> Result<Option<Self>, CertError> {
        if now >= due(self.ca_issued, self.ca_expires) {
            let mut next = Self::issue(names, lifetimes, now)?;
            // Trust the previous CA too, until the next CA rotation: certificates it
            // signed stay valid while other replicas pick up the new ones.
            next.ca_bundle = format!("{}{}", next.ca_cert, self.ca_cert);
            return Ok(Some(next));
        }
        if now >= due(self.cert_issued, self.cert_expires) || self.names != names {
            let mut next = self.clone();
            next.issue_serving(names, lifetimes, now)?;
            return Ok(Some(next));
        }
        Ok(None)
    }

    /// When [`Bundle::renewed`] will next have something to do.
    pub fn next_rotation(&self) -> SystemTime {
        due(self.ca_issued, self.ca_expires).min(due(self.cert_issued, self.cert_expires))
    }

    /// The serving certificate and key, for rustls.
    pub fn certified_key(&self) -> Result<CertifiedKey, CertError> {
        certified_key(
            self.cert.as_bytes(),
            self.key.as_bytes(),
            "the serving certificate",
        )
    }

    /// The Secret data and annotations holding this bundle.
    pub fn to_secret(&self, name: &str, namespace: &str) -> Secret {
        let mut secret = Secret {
            type_: Some("Opaque".into()),
            ..Secret::default()
        };
        secret.metadata.name = Some(name.to_owned());
        secret.metadata.namespace = Some(namespace.to_owned());
        secret.metadata.labels = Some(BTreeMap::from([(
            "app.kubernetes.io/managed-by".to_owned(),
            crate::FIELD_MANAGER.to_owned(),
        )]));
        let time = |t: SystemTime| humantime::format_rfc3339_seconds(t).to_string();
        secret.metadata.annotations = Some(BTreeMap::from([
            (annotation::CA_ISSUED.to_owned(), time(self.ca_issued)),
            (annotation::CA_EXPIRES.to_owned(), time(self.ca_expires)),
            (annotation::CERT_ISSUED.to_owned(), time(self.cert_issued)),
            (annotation::CERT_EXPIRES.to_owned(), time(self.cert_expires)),
            (annotation::NAMES.to_owned(), self.names.join(",")),
        ]));
        let bytes = |s: &str| ByteString(s.as_bytes().to_vec());
        secret.data = Some(BTreeMap::from([
            ("tls.crt".to_owned(), bytes(&self.cert)),
            ("tls.key".to_owned(), bytes(&self.key)),
            ("ca.crt".to_owned(), bytes(&self.ca_bundle)),
            ("ca-signer.crt".to_owned(), bytes(&self.ca_cert)),
            ("ca-signer.key".to_owned(), bytes(&self.ca_key)),
        ]));
        secret
    }

    /// Reads a bundle written by [`Bundle::to_secret`]; an error says what is missing or
    /// unusable (the caller then issues a new one).
    pub fn from_secret(secret: &Secret) -> Result<Self, CertError> {
        let annotations = secret.metadata.annotations.clone().unwrap_or_default();
        let time = |key: &str| {
            let text = annotations
                .get(key)
                .ok_or_else(|| invalid("the Secret", format!("annotation {key} is missing")))?;
            humantime::parse_rfc3339(text).map_err(|e| invalid(key, e))
        };
        let data = secret.data.clone().unwrap_or_default();
        let text = |key: &str| {
            let bytes = data
                .get(key)
                .ok_or_else(|| invalid("the Secret", format!("key {key} is missing")))?;
            String::from_utf8(bytes.0.clone()).map_err(|e| invalid(key, e))
        };
        let bundle = Self {
            ca_bundle: text("ca.crt")?,
            ca_cert: text("ca-signer.crt")?,
            ca_key: text("ca-signer.key")?,
            ca_issued: time(annotation::CA_ISSUED)?,
            ca_expires: time(annotation::CA_EXPIRES)?,
            cert: text("tls.crt")?,
            key: text("tls.key")?,
            cert_issued: time(annotation::CERT_ISSUED)?,
            cert_expires: time(annotation::CERT_EXPIRES)?,
            names: annotations
                .get(annotation::NAMES)
                .map(|n| n.split(',').map(str::to_owned).collect())
                .unwrap_or_default(),
        };
        // Both keys must be usable: a serving key rustls can load, a CA key rcgen can sign with.
        bundle.certified_key()?;
        KeyPair::from_pem(&bundle.ca_key)?;
        Ok(bundle)
    }
}

/// Annotations of the certificate Secret: the dates rotation decides on.
pub mod annotation {
    /// When the signing CA was issued (RFC 3339).
    pub const CA_ISSUED: &str = "toolhive.stacklok.dev/ca-issued";
    /// When the signing CA expires.
    pub const CA_EXPIRES: &str = "toolhive.stacklok.dev/ca-expires";
    /// When the serving certificate was issued.
    pub const CERT_ISSUED: &str = "toolhive.stacklok.dev/cert-issued";
    /// When the serving certificate expires.
    pub const CERT_EXPIRES: &str = "toolhive.stacklok.dev/cert-expires";
    /// The names the serving certificate is valid for, comma-separated.
    pub const NAMES: &str = "toolhive.stacklok.dev/cert-names";
}

/// A rustls certificate and signing key from PEM.
pub fn certified_key(cert: &[u8], key: &[u8], what: &str) -> Result<CertifiedKey, CertError> {
    let chain = CertificateDer::pem_slice_iter(cert)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid(what, e))?;
    if chain.is_empty() {
        return Err(invalid(what, "no certificate in the PEM data"));
    }
    let key = PrivateKeyDer::from_pem_slice(key).map_err(|e| invalid(what, e))?;
    let signer = any_supported_type(&key).map_err(|e| invalid(what, e))?;
    Ok(CertifiedKey::new(chain, signer))
}

/// The serving certificate of `tls.crt` and `tls.key` in `dir` (a mounted cert-manager
/// Secret), with the raw bytes so a change can be noticed.
pub fn read_dir(dir: &Path) -> Result<(CertifiedKey, Vec<u8>), CertError> {
    let read = |name: &str| {
        let path = dir.join(name);
        std::fs::read(&path).map_err(|source| CertError::Read { path, source })
    };
    let (cert, key) = (read("tls.crt")?, read("tls.key")?);
    let what = dir.join("tls.crt").display().to_string();
    let certified = certified_key(&cert, &key, &what)?;
    Ok((certified, [cert, key].concat()))
}

/// Hands rustls the current serving certificate; [`CertResolver::set`] replaces it for
/// every handshake from then on, while established connections keep theirs.
pub struct CertResolver {
    current: ArcSwap<CertifiedKey>,
}

impl CertResolver {
    /// A resolver serving `initial`.
    pub fn new(initial: CertifiedKey) -> Arc<Self> {
        Arc::new(Self {
            current: ArcSwap::from_pointee(initial),
        })
    }

    /// Serves `next` from the next handshake on.
    pub fn set(&self, next: CertifiedKey) {
        self.current.store(Arc::new(next));
    }

    /// The certificate being served (its leaf, DER).
    pub fn leaf(&self) -> Option<Vec<u8>> {
        self.current.load().cert.first().map(|c| c.to_vec())
    }
}

impl fmt::Debug for CertResolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("CertResolver")
    }
}

impl ResolvesServerCert for CertResolver {
    fn resolve(&self, _: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current.load_full())
    }
}

/// The leaf certificate the server at `addr` presents to a client that trusts only
/// `ca_bundle` and dials it as `name`: what the API server sees. For tests and the
/// benchmark, which must check the wire, not our own state.
pub async fn probe(
    addr: std::net::SocketAddr,
    ca_bundle: &str,
    name: &str,
) -> Result<Vec<u8>, CertError> {
    let fail = |message: String| CertError::Probe { addr, message };
    let mut roots = tokio_rustls::rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_bundle.as_bytes()) {
        let cert = cert.map_err(|e| fail(format!("the CA bundle: {e}")))?;
        roots
            .add(cert)
            .map_err(|e| fail(format!("the CA bundle: {e}")))?;
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let config = tokio_rustls::rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| fail(e.to_string()))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    let server_name = tokio_rustls::rustls::pki_types::ServerName::try_from(name.to_owned())
        .map_err(|e| fail(format!("{name}: {e}")))?;
    let tcp = tokio::net::TcpStream::connect(addr)
        .await
        .map_err(|e| fail(e.to_string()))?;
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(server_name, tcp)
        .await
        .map_err(|e| fail(e.to_string()))?;
    tls.get_ref()
        .1
        .peer_certificates()
        .and_then(|chain| chain.first())
        .map(|leaf| leaf.to_vec())
        .ok_or_else(|| fail("no certificate presented".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names() -> Vec<String> {
        vec![
            "thv-operator-webhook.toolhive.svc".to_owned(),
            "127.0.0.1".to_owned(),
        ]
    }

    fn short() -> Lifetimes {
        Lifetimes {
            ca: Duration::from_secs(300),
            serving: Duration::from_secs(90),
        }
    }

    #[test]
    fn a_new_bundle_round_trips_through_its_secret() -> anyhow::Result<()> {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let bundle = Bundle::issue(&names(), Lifetimes::default(), now)?;
        let secret = bundle.to_secret("thv-operator-webhook-tls", "toolhive");
        assert_eq!(secret.type_.as_deref(), Some("Opaque"));
        assert_eq!(Bundle::from_secret(&secret)?, bundle);
        assert_eq!(
            bundle.cert_expires,
            now + Duration::from_secs(90 * 24 * 3600)
        );
        Ok(())
    }

    #[test]
    fn serving_certificate_rotates_at_two_thirds_with_the_same_ca() -> anyhow::Result<()> {
        let now = SystemTime::now();
        let bundle = Bundle::issue(&names(), short(), now)?;
        assert!(
            bundle
                .renewed(&names(), short(), now + Duration::from_secs(59))?
                .is_none()
        );
        let later = now + Duration::from_secs(60);
        let next = bundle
            .renewed(&names(), short(), later)?
            .ok_or_else(|| anyhow::anyhow!("due at 2/3 of 90 s"))?;
        assert_ne!(next.cert, bundle.cert);
        assert_eq!(
            next.ca_bundle, bundle.ca_bundle,
            "the caBundle is unchanged"
        );
        assert_eq!(next.cert_issued, later);
        Ok(())
    }

    #[test]
    fn ca_rotation_keeps_trusting_the_previous_ca() -> anyhow::Result<()> {
        let now = SystemTime::now();
        let bundle = Bundle::issue(&names(), short(), now)?;
        let next = bundle
            .renewed(&names(), short(), now + Duration::from_secs(200))?
            .ok_or_else(|| anyhow::anyhow!("CA due at 2/3 of 300 s"))?;
        assert_ne!(next.ca_cert, bundle.ca_cert);
        assert!(next.ca_bundle.starts_with(&next.ca_cert));
        assert!(next.ca_bundle.ends_with(&bundle.ca_cert));
        Ok(())
    }

    #[test]
    fn serving_certificate_never_outlives_its_ca() -> anyhow::Result<()> {
        let now = SystemTime::now();
        let lifetimes = Lifetimes {
            ca: Duration::from_secs(60),
            serving: Duration::from_secs(600),
        };
        let bundle = Bundle::issue(&names(), lifetimes, now)?;
        assert_eq!(bundle.cert_expires, bundle.ca_expires);
        Ok(())
    }

    #[test]
    fn other_names_reissue_the_serving_certificate() -> anyhow::Result<()> {
        let now = SystemTime::now();
        let bundle = Bundle::issue(&names(), short(), now)?;
        let other = vec!["127.0.0.2".to_owned()];
        let next = bundle
            .renewed(&other, short(), now)?
            .ok_or_else(|| anyhow::anyhow!("new names"))?;
        assert_eq!(next.names, other);
        Ok(())
    }

    #[test]
    fn a_secret_without_keys_is_reported_not_trusted() {
        let mut secret = Secret::default();
        secret.metadata.annotations = Some(BTreeMap::new());
        let Err(error) = Bundle::from_secret(&secret) else {
            panic!("an empty Secret is not a bundle");
        };
        assert!(error.to_string().contains("missing"), "{error}");
    }

    #[test]
    fn mounted_certificate_directory_is_read_and_a_missing_file_named() -> anyhow::Result<()> {
        let dir = tempfile::tempdir()?;
        let missing = read_dir(dir.path()).err().map(|e| e.to_string());
        assert!(
            missing.as_deref().is_some_and(|e| e.contains("tls.crt")),
            "{missing:?}"
        );
        let bundle = Bundle::issue(&names(), short(), SystemTime::now())?;
        std::fs::write(dir.path().join("tls.crt"), &bundle.cert)?;
        std::fs::write(dir.path().join("tls.key"), &bundle.key)?;
        let (key, raw) = read_dir(dir.path())?;
        assert_eq!(key.cert.len(), 1);
        assert_eq!(
            raw,
            [bundle.cert.as_bytes(), bundle.key.as_bytes()].concat()
        );
        std::fs::write(dir.path().join("tls.key"), "not a key")?;
        assert!(read_dir(dir.path()).is_err(), "a broken key is refused");
        Ok(())
    }

    #[test]
    fn resolver_serves_the_certificate_set_last() -> anyhow::Result<()> {
        let now = SystemTime::now();
        let first = Bundle::issue(&names(), short(), now)?;
        let resolver = CertResolver::new(first.certified_key()?);
        let before = resolver.leaf();
        let second = Bundle::issue(&names(), short(), now)?;
        resolver.set(second.certified_key()?);
        assert_ne!(resolver.leaf(), before);
        Ok(())
    }
}
