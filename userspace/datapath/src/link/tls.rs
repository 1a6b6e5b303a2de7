//! TLS of the failover link (RFC 8156 §10, RFC 7653 §8.2 and §9.1): rustls (TLS 1.3 and 1.2,
//! the `ring` provider) with mutual authentication.
//!
//! Both sides check the partner's certificate the same way: it must chain to the configured
//! CA (webpki path validation) *and* carry one of the configured peer names (a DNS name or IP
//! address in its subjectAltName; RFC 7653 §9.1 "MUST be configurable with regard to which
//! requestors they will communicate"). The primary is the TLS client, the secondary the TLS
//! server; the secondary requires a client certificate and aborts the handshake when it is
//! unacceptable (§9.1 "MUST abort the creation of the TLS connection").

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::server::WebPkiClientVerifier;
use rustls::server::danger::{ClientCertVerified, ClientCertVerifier};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, DistinguishedName, RootCertStore,
    ServerConfig, SignatureScheme,
};
use rustls_pki_types::pem::PemObject as _;
use rustls_pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};

/// Where the TLS material of one relationship is, and whom it accepts.
#[derive(Clone, Copy, Debug)]
pub struct TlsPaths<'a> {
    /// PEM file of the CA certificate(s) the partner's certificate must chain to.
    pub ca: &'a Path,
    /// PEM file of our certificate chain (ours first).
    pub cert: &'a Path,
    /// PEM file of our private key (PKCS#8, PKCS#1 or SEC1).
    pub key: &'a Path,
    /// Names (DNS names or IP addresses) the partner's certificate must carry, one of them.
    pub peer_names: &'a [String],
}

/// Which piece of the TLS configuration is wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsField {
    /// `tls.ca`.
    Ca,
    /// `tls.cert`.
    Cert,
    /// `tls.key`.
    Key,
    /// `tls.peer-names`.
    PeerNames,
}

impl TlsField {
    /// The configuration key, below `[failover.tls]`.
    pub const fn key(self) -> &'static str {
        match self {
            Self::Ca => "tls.ca",
            Self::Cert => "tls.cert",
            Self::Key => "tls.key",
            Self::PeerNames => "tls.peer-names",
        }
    }
}

/// Why the TLS material could not be loaded: which field, which file, why.
#[derive(Debug, thiserror::Error)]
#[error("{}: {message}", path.as_ref().map_or_else(String::new, |p| p.display().to_string()))]
pub struct TlsError {
    /// The configuration field at fault.
    pub field: TlsField,
    /// The file, when a file is at fault.
    pub path: Option<PathBuf>,
    /// What is wrong with it.
    pub message: String,
}

impl TlsError {
    fn file(field: TlsField, path: &Path, message: impl Into<String>) -> Self {
        Self {
            field,
            path: Some(path.to_owned()),
            message: message.into(),
        }
    }
}

/// Client and server configurations of one relationship, loaded and checked.
#[derive(Clone)]
pub struct TlsSettings {
    /// What the primary connects with.
    pub(crate) client: Arc<ClientConfig>,
    /// What the secondary accepts with.
    pub(crate) server: Arc<ServerConfig>,
    /// The name the primary asks for (SNI; the first configured peer name).
    pub(crate) server_name: ServerName<'static>,
    /// The accepted peer names.
    pub(crate) peer_names: Arc<[ServerName<'static>]>,
}

impl fmt::Debug for TlsSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("TlsSettings")
            .field("server_name", &self.server_name)
            .field("peer_names", &self.peer_names)
            .finish_non_exhaustive()
    }
}

#[expect(
    deprecated,
    reason = "ring is the provider deny.toml allows (no aws-lc-rs); it offers no post-quantum key \
              exchange, which a link between two configured partners does without"
)]
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// TLS 1.3 and 1.2 only (RFC 7525 §3.1.1: no SSL, no TLS 1.0/1.1).
static VERSIONS: &[&rustls::SupportedProtocolVersion] =
    &[&rustls::version::TLS13, &rustls::version::TLS12];

impl TlsSettings {
    /// Reads and checks the PEM files of `paths` and builds both configurations.
    ///
    /// # Errors
    /// A file that cannot be read, holds no (or a malformed) certificate or key, a key that does
    /// not match the certificate, a peer name that is neither a DNS name nor an IP address.
    pub fn load(paths: &TlsPaths<'_>) -> Result<Self, TlsError> {
        let peer_names = peer_names(paths.peer_names)?;
        let Some(server_name) = peer_names.first().cloned() else {
            return Err(TlsError {
                field: TlsField::PeerNames,
                path: None,
                message: "no peer name: the partner's certificate must carry one".to_owned(),
            });
        };
        let peer_names: Arc<[ServerName<'static>]> = peer_names.into();
        let ca = read_certs(TlsField::Ca, paths.ca)?;
        let mut roots = RootCertStore::empty();
        for (i, c) in ca.into_iter().enumerate() {
            roots.add(c).map_err(|e| {
                TlsError::file(
                    TlsField::Ca,
                    paths.ca,
                    format!("certificate {} is not a usable CA certificate: {e}", i + 1),
                )
            })?;
        }
        let roots = Arc::new(roots);
        let chain = read_certs(TlsField::Cert, paths.cert)?;
        let key = PrivateKeyDer::from_pem_file(paths.key).map_err(|e| {
            TlsError::file(
                TlsField::Key,
                paths.key,
                format!("no usable PEM private key: {e}"),
            )
        })?;
        let provider = provider();

        let server_verifier =
            WebPkiServerVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::file(TlsField::Ca, paths.ca, e.to_string()))?;
        let client = ClientConfig::builder_with_provider(Arc::clone(&provider))
            .with_protocol_versions(VERSIONS)
            .map_err(|e| TlsError::file(TlsField::Cert, paths.cert, e.to_string()))?
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(PartnerAsServer {
                inner: server_verifier,
                names: Arc::clone(&peer_names),
            }))
            .with_client_auth_cert(chain.clone(), key.clone_key())
            .map_err(|e| key_error(paths, &e))?;

        let client_verifier =
            WebPkiClientVerifier::builder_with_provider(Arc::clone(&roots), Arc::clone(&provider))
                .build()
                .map_err(|e| TlsError::file(TlsField::Ca, paths.ca, e.to_string()))?;
        let server = ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(VERSIONS)
            .map_err(|e| TlsError::file(TlsField::Cert, paths.cert, e.to_string()))?
            .with_client_cert_verifier(Arc::new(PartnerAsClient {
                inner: client_verifier,
                names: Arc::clone(&peer_names),
            }))
            .with_single_cert(chain, key)
            .map_err(|e| key_error(paths, &e))?;
        Ok(Self {
            client: Arc::new(client),
            server: Arc::new(server),
            server_name,
            peer_names,
        })
    }
}

fn key_error(paths: &TlsPaths<'_>, e: &rustls::Error) -> TlsError {
    TlsError::file(
        TlsField::Key,
        paths.key,
        format!(
            "does not go with the certificate of {}: {e}",
            paths.cert.display()
        ),
    )
}

fn peer_names(names: &[String]) -> Result<Vec<ServerName<'static>>, TlsError> {
    names
        .iter()
        .map(|n| {
            ServerName::try_from(n.clone()).map_err(|_| TlsError {
                field: TlsField::PeerNames,
                path: None,
                message: format!("`{n}` is neither a DNS name nor an IP address"),
            })
        })
        .collect()
}

/// Every certificate of a PEM file; at least one.
fn read_certs(field: TlsField, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| TlsError::file(field, path, format!("cannot read: {e}")))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| TlsError::file(field, path, format!("malformed PEM: {e}")))?;
    if certs.is_empty() {
        return Err(TlsError::file(
            field,
            path,
            "holds no PEM certificate (`-----BEGIN CERTIFICATE-----`)",
        ));
    }
    for (i, c) in certs.iter().enumerate() {
        if let Err(e) = webpki::EndEntityCert::try_from(c) {
            return Err(TlsError::file(
                field,
                path,
                format!("certificate {} does not parse as X.509: {e}", i + 1),
            ));
        }
    }
    Ok(certs)
}

/// The configured peer name that `cert` carries, if any.
pub(crate) fn matching_name(
    cert: &CertificateDer<'_>,
    names: &[ServerName<'static>],
) -> Option<String> {
    let ee = webpki::EndEntityCert::try_from(cert).ok()?;
    names
        .iter()
        .find(|n| ee.verify_is_valid_for_subject_name(n).is_ok())
        .map(|n| n.to_str().into_owned())
}

/// Who the partner is by its certificate: for logs and `tandem status`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerIdentity {
    /// The configured peer name its certificate matched.
    pub matched: String,
    /// Its subject's common name, if it has one.
    pub subject_cn: Option<String>,
    /// The DNS names of its subjectAltName.
    pub dns_names: Vec<String>,
    /// The TLS version negotiated (`TLSv1_3`, `TLSv1_2`).
    pub version: String,
}

impl fmt::Display for PeerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.matched)?;
        if let Some(cn) = &self.subject_cn {
            write!(f, " (CN={cn}")?;
        } else {
            f.write_str(" (")?;
        }
        for n in &self.dns_names {
            write!(f, " DNS:{n}")?;
        }
        write!(f, "; {})", self.version)
    }
}

impl PeerIdentity {
    /// The identity shown by an established connection (`None` if it has no certificate,
    /// which a completed mutual handshake never gives).
    pub(crate) fn of(conn: &rustls::Connection, names: &[ServerName<'static>]) -> Option<Self> {
        let cert = conn.peer_certificates()?.first()?;
        let ee = webpki::EndEntityCert::try_from(cert).ok()?;
        Some(Self {
            matched: matching_name(cert, names).unwrap_or_default(),
            subject_cn: common_name(ee.subject()),
            dns_names: ee.valid_dns_names().map(str::to_owned).collect(),
            version: conn
                .protocol_version()
                .map_or_else(|| "?".to_owned(), |v| format!("{v:?}")),
        })
    }
}

/// One DER TLV at the start of `der`: `(tag, contents, rest)`. Short and long definite lengths
/// up to 4 octets; anything else (or a length past the end) is `None`.
fn tlv(der: &[u8]) -> Option<(u8, &[u8], &[u8])> {
    let (&tag, rest) = der.split_first()?;
    let (&first, rest) = rest.split_first()?;
    let (len, rest) = if first < 0x80 {
        (usize::from(first), rest)
    } else {
        let n = usize::from(first & 0x7f);
        if n == 0 || n > 4 {
            return None;
        }
        let (bytes, rest) = rest.split_at_checked(n)?;
        let len = bytes
            .iter()
            .fold(0usize, |acc, &b| (acc << 8) | usize::from(b));
        (len, rest)
    };
    let (contents, rest) = rest.split_at_checked(len)?;
    Some((tag, contents, rest))
}

/// The first commonName (2.5.4.3) of an RDNSequence's contents (as webpki's `subject()`
/// gives it, without the outer SEQUENCE).
fn common_name(mut rdns: &[u8]) -> Option<String> {
    const CN: &[u8] = &[0x55, 0x04, 0x03];
    while let Some((0x31, set, rest)) = tlv(rdns) {
        rdns = rest;
        let mut atvs = set;
        while let Some((0x30, atv, rest)) = tlv(atvs) {
            atvs = rest;
            let Some((0x06, oid, value)) = tlv(atv) else {
                continue;
            };
            if oid != CN {
                continue;
            }
            // UTF8String, PrintableString, IA5String, T61String.
            if let Some((0x0c | 0x13 | 0x16 | 0x14, text, _)) = tlv(value) {
                return std::str::from_utf8(text).ok().map(str::to_owned);
            }
        }
    }
    None
}

/// The primary's check of the secondary: the CA chain (webpki, for the first peer name or
/// any other configured one) and one of the peer names.
#[derive(Debug)]
struct PartnerAsServer {
    inner: Arc<WebPkiServerVerifier>,
    names: Arc<[ServerName<'static>]>,
}

impl ServerCertVerifier for PartnerAsServer {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let mut last = rustls::Error::InvalidCertificate(CertificateError::NotValidForName);
        for name in self.names.iter() {
            match self
                .inner
                .verify_server_cert(end_entity, intermediates, name, ocsp_response, now)
            {
                Ok(v) => return Ok(v),
                Err(e) => last = e,
            }
        }
        Err(last)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

/// The secondary's check of the primary: a client certificate is required, must chain to
/// the CA and must carry one of the peer names (checked without an extended key usage
/// requirement for the name, so one certificate with both serverAuth and clientAuth serves).
#[derive(Debug)]
struct PartnerAsClient {
    inner: Arc<dyn ClientCertVerifier>,
    names: Arc<[ServerName<'static>]>,
}

impl ClientCertVerifier for PartnerAsClient {
    fn client_auth_mandatory(&self) -> bool {
        true
    }

    fn root_hint_subjects(&self) -> &[DistinguishedName] {
        self.inner.root_hint_subjects()
    }

    fn verify_client_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        now: UnixTime,
    ) -> Result<ClientCertVerified, rustls::Error> {
        let verified = self
            .inner
            .verify_client_cert(end_entity, intermediates, now)?;
        if matching_name(end_entity, &self.names).is_none() {
            return Err(rustls::Error::InvalidCertificate(
                CertificateError::NotValidForName,
            ));
        }
        Ok(verified)
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        self.inner.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.inner.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tlv_and_common_name_parse_a_subject_and_refuse_truncation() {
        // SET { SEQUENCE { OID 2.5.4.6, PrintableString "NL" } },
        // SET { SEQUENCE { OID 2.5.4.3, UTF8String "dc2" } }
        let subject = [
            0x31, 0x0b, 0x30, 0x09, 0x06, 0x03, 0x55, 0x04, 0x06, 0x13, 0x02, b'N', b'L', 0x31,
            0x0c, 0x30, 0x0a, 0x06, 0x03, 0x55, 0x04, 0x03, 0x0c, 0x03, b'd', b'c', b'2',
        ];
        assert_eq!(common_name(&subject).as_deref(), Some("dc2"));
        for cut in 0..subject.len() {
            // Never panics; a cut subject yields the CN only when it is whole.
            let cn = common_name(&subject[..cut]);
            assert!(cn.is_none() || cut == subject.len(), "{cut}");
        }
        assert_eq!(tlv(&[0x04, 0x85, 1, 1, 1, 1, 1]), None, "5-octet length");
        assert_eq!(
            tlv(&[0x04, 0x81, 0x02, 7, 8]),
            Some((0x04, &[7u8, 8][..], &[][..]))
        );
    }

    #[test]
    fn load_missing_files_name_the_field() {
        let names = ["dc2.example".to_owned()];
        let paths = TlsPaths {
            ca: Path::new("/nonexistent/ca.pem"),
            cert: Path::new("/nonexistent/cert.pem"),
            key: Path::new("/nonexistent/key.pem"),
            peer_names: &names,
        };
        let e = TlsSettings::load(&paths).unwrap_err();
        assert_eq!(e.field, TlsField::Ca);
        assert!(
            e.to_string()
                .starts_with("/nonexistent/ca.pem: cannot read"),
            "{e}"
        );
        let bad = ["not a name!".to_owned()];
        let e = TlsSettings::load(&TlsPaths {
            peer_names: &bad,
            ..paths
        })
        .unwrap_err();
        assert_eq!(e.field, TlsField::PeerNames);
    }
}
