//! Mutual TLS between nodes: the cluster CA, node certificates, and the rustls configurations
//! that trust only that CA.
//!
//! Every node holds a certificate signed by the cluster's own CA, whose only subject
//! alternative name is `n{id}.ringstore`. Both ends of a QUIC connection present their
//! certificate and check the other's against a root store that holds the cluster CA and
//! nothing else (rustls's `WebPkiServerVerifier` / `WebPkiClientVerifier`). A dialling node
//! also checks that the server's certificate names the node it meant to reach; a listening
//! node checks, per frame, that the sender's claimed id is the one its certificate names
//! ([`cert_names_node`]).
//!
//! # Guarantees
//! - A peer whose certificate is not signed by the cluster CA cannot complete a handshake, in
//!   either direction.
//! - Only TLS 1.3 (QUIC requires it) and the `ring` crypto provider are used.
//! - Secrets derived from a node's private key ([`NodeTls::derived_secret`]) are the same
//!   across its restarts and different for every node.
//!
//! # Known limits
//! - No revocation: removing a node from the cluster does not invalidate its certificate
//!   (re-issue the CA to evict a node for good).
//! - Keys are ECDSA P-256 (rcgen's default), kept in unencrypted PEM files.

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use ringstore_core::NodeId;
use rustls::RootCertStore;
use rustls::client::WebPkiServerVerifier;
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The DNS suffix of node names in certificates.
pub const NODE_NAME_SUFFIX: &str = "ringstore";

/// The ALPN protocol name nodes speak to each other: a peer speaking anything else fails the
/// handshake.
pub const ALPN_PROTOCOL: &[u8] = b"ringstore/1";

/// The ALPN protocol name of the native client protocol (`ringstore_core::native_protocol`): a node's endpoint
/// accepts both, and serves a connection as a peer or as a client by the protocol agreed.
pub const ALPN_CLIENT: &[u8] = b"ringstore-client/2";

/// The name a client certificate carries. It names no node, so a connection presenting it can
/// never pass as a peer (`cert_names_node` is false for every id).
pub const CLIENT_NAME: &str = "client.ringstore";

/// The name a node's certificate carries: `n{id}.ringstore`.
pub fn node_name(node: NodeId) -> String {
    format!("n{}.{NODE_NAME_SUFFIX}", node.0)
}

/// Why TLS material could not be made, read or used.
#[derive(Debug, thiserror::Error)]
pub enum TlsError {
    /// Certificate generation or signing failed.
    #[error("certificate generation failed: {0}")]
    Generate(#[from] rcgen::Error),
    /// A file could not be read or written.
    #[error("cannot access {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A PEM file holds no certificate or key of the expected kind.
    #[error("{path} holds no valid PEM {what}")]
    Pem {
        /// The file.
        path: PathBuf,
        /// "certificate" or "private key".
        what: &'static str,
    },
    /// rustls refused the certificate, key or verifier configuration.
    #[error("TLS configuration refused: {0}")]
    Rustls(#[from] rustls::Error),
    /// The verifier could not be built from the CA.
    #[error("cannot build a verifier from the CA certificate: {0}")]
    Verifier(#[from] rustls::server::VerifierBuilderError),
    /// quinn refused the rustls configuration.
    #[error("QUIC cannot use this TLS configuration: {0}")]
    Quic(#[from] quinn::crypto::rustls::NoInitialCipherSuite),
}

fn io_error(path: &Path) -> impl FnOnce(std::io::Error) -> TlsError + '_ {
    move |source| TlsError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The cluster's certificate authority: signs every node's certificate.
pub struct ClusterCa {
    cert_pem: String,
    key_pem: String,
}

impl ClusterCa {
    /// Generates a fresh self-signed CA.
    pub fn generate() -> Result<Self, TlsError> {
        let key = KeyPair::generate()?;
        let cert = ca_params().self_signed(&key)?;
        Ok(Self {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }

    /// Writes the CA certificate and key as PEM files.
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
        std::fs::write(cert_path, &self.cert_pem).map_err(io_error(cert_path))?;
        write_private(key_path, &self.key_pem)
    }

    /// Reads a CA saved by [`ClusterCa::save`].
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<Self, TlsError> {
        let cert_pem = std::fs::read_to_string(cert_path).map_err(io_error(cert_path))?;
        let key_pem = std::fs::read_to_string(key_path).map_err(io_error(key_path))?;
        // Check both parse now rather than at the first issue.
        KeyPair::from_pem(&key_pem).map_err(|_| TlsError::Pem {
            path: key_path.to_path_buf(),
            what: "private key",
        })?;
        Issuer::from_ca_cert_pem(&cert_pem, KeyPair::from_pem(&key_pem)?).map_err(|_| {
            TlsError::Pem {
                path: cert_path.to_path_buf(),
                what: "certificate",
            }
        })?;
        Ok(Self { cert_pem, key_pem })
    }

    /// The CA certificate in PEM.
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// Issues a certificate for `node`, valid for both ends of a connection, naming
    /// `n{id}.ringstore`.
    pub fn issue_node_cert(&self, node: NodeId) -> Result<NodeCert, TlsError> {
        self.issue(
            &node_name(node),
            vec![
                ExtendedKeyUsagePurpose::ServerAuth,
                ExtendedKeyUsagePurpose::ClientAuth,
            ],
        )
    }

    /// Issues a client certificate (for the native client: `ringstore bench`, the CLI), naming
    /// [`CLIENT_NAME`]: it can dial nodes but never pass as one.
    pub fn issue_client_cert(&self) -> Result<NodeCert, TlsError> {
        self.issue(CLIENT_NAME, vec![ExtendedKeyUsagePurpose::ClientAuth])
    }

    fn issue(
        &self,
        subject: &str,
        usages: Vec<ExtendedKeyUsagePurpose>,
    ) -> Result<NodeCert, TlsError> {
        let ca_key = KeyPair::from_pem(&self.key_pem)?;
        let issuer = Issuer::from_ca_cert_pem(&self.cert_pem, ca_key)?;
        let mut params = CertificateParams::new(vec![subject.to_string()])?;
        let mut name = DistinguishedName::new();
        name.push(DnType::CommonName, subject);
        params.distinguished_name = name;
        params.is_ca = IsCa::ExplicitNoCa;
        params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        params.extended_key_usages = usages;
        let key = KeyPair::generate()?;
        let cert = params.signed_by(&key, &issuer)?;
        Ok(NodeCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// The fixed parameters of a cluster CA.
fn ca_params() -> CertificateParams {
    let mut params = CertificateParams::default();
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, "ringstore cluster CA");
    params.distinguished_name = name;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    params
}

/// Writes a private key readable by its owner only (where the platform allows).
fn write_private(path: &Path, pem: &str) -> Result<(), TlsError> {
    #[cfg(unix)]
    {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(path)
            .map_err(io_error(path))?;
        file.write_all(pem.as_bytes()).map_err(io_error(path))
    }
    #[cfg(not(unix))]
    {
        std::fs::write(path, pem).map_err(io_error(path))
    }
}

/// A node's certificate and private key, in PEM.
#[derive(Clone)]
pub struct NodeCert {
    /// The certificate, signed by the cluster CA.
    pub cert_pem: String,
    /// The private key.
    pub key_pem: String,
}

impl NodeCert {
    /// Writes the certificate and key as PEM files.
    pub fn save(&self, cert_path: &Path, key_path: &Path) -> Result<(), TlsError> {
        std::fs::write(cert_path, &self.cert_pem).map_err(io_error(cert_path))?;
        write_private(key_path, &self.key_pem)
    }
}

/// A node's TLS material, parsed: what the transport builds its QUIC configs from.
pub struct NodeTls {
    ca: CertificateDer<'static>,
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
}

impl Clone for NodeTls {
    fn clone(&self) -> Self {
        Self {
            ca: self.ca.clone(),
            chain: self.chain.clone(),
            key: self.key.clone_key(),
        }
    }
}

impl NodeTls {
    /// Reads the CA certificate, the node's certificate and its key from PEM files.
    pub fn load(ca_cert: &Path, cert: &Path, key: &Path) -> Result<Self, TlsError> {
        let read = |path: &Path| std::fs::read(path).map_err(io_error(path));
        let ca_pem = read(ca_cert)?;
        let cert_pem = read(cert)?;
        let key_pem = read(key)?;
        Self::from_pem(&ca_pem, &cert_pem, &key_pem).map_err(|what| TlsError::Pem {
            path: match what {
                PemPart::Ca => ca_cert.to_path_buf(),
                PemPart::Cert => cert.to_path_buf(),
                PemPart::Key => key.to_path_buf(),
            },
            what: if what == PemPart::Key {
                "private key"
            } else {
                "certificate"
            },
        })
    }

    /// Builds the material from in-memory PEM (tests, `cluster up`).
    pub fn from_pem_strings(ca: &ClusterCa, node: &NodeCert) -> Result<Self, TlsError> {
        Self::from_pem(
            ca.cert_pem.as_bytes(),
            node.cert_pem.as_bytes(),
            node.key_pem.as_bytes(),
        )
        .map_err(|what| TlsError::Pem {
            path: PathBuf::from(format!("<in-memory {what:?}>")),
            what: "certificate or key",
        })
    }

    fn from_pem(ca: &[u8], cert: &[u8], key: &[u8]) -> Result<Self, PemPart> {
        let ca = CertificateDer::from_pem_slice(ca).map_err(|_| PemPart::Ca)?;
        let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_slice_iter(cert)
            .collect::<Result<_, _>>()
            .map_err(|_| PemPart::Cert)?;
        if chain.is_empty() {
            return Err(PemPart::Cert);
        }
        let key = PrivateKeyDer::from_pem_slice(key).map_err(|_| PemPart::Key)?;
        Ok(Self { ca, chain, key })
    }

    fn roots(&self) -> Result<Arc<RootCertStore>, TlsError> {
        let mut roots = RootCertStore::empty();
        roots.add(self.ca.clone())?;
        Ok(Arc::new(roots))
    }

    /// The QUIC server side: presents this node's certificate, requires a client certificate
    /// signed by the cluster CA, and speaks either ALPN protocol (peer or native client).
    pub fn quic_server_config(&self) -> Result<quinn::ServerConfig, TlsError> {
        let provider = provider();
        let verifier =
            WebPkiClientVerifier::builder_with_provider(self.roots()?, provider.clone()).build()?;
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_client_cert_verifier(verifier)
            .with_single_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![ALPN_PROTOCOL.to_vec(), ALPN_CLIENT.to_vec()];
        let quic = quinn::crypto::rustls::QuicServerConfig::try_from(config)?;
        Ok(quinn::ServerConfig::with_crypto(Arc::new(quic)))
    }

    /// The QUIC client side of a node dialling a peer: presents this node's certificate,
    /// accepts only a server certificate signed by the cluster CA and naming the node dialled.
    pub fn quic_client_config(&self) -> Result<quinn::ClientConfig, TlsError> {
        self.quic_client_config_for(ALPN_PROTOCOL)
    }

    /// The QUIC client side of the native client: as [`Self::quic_client_config`], speaking
    /// [`ALPN_CLIENT`].
    pub fn quic_native_client_config(&self) -> Result<quinn::ClientConfig, TlsError> {
        self.quic_client_config_for(ALPN_CLIENT)
    }

    /// A secret for `purpose` derived from this node's private key: the same across the
    /// node's restarts, different for every node and every purpose (see
    /// `transport::endpoint_config`, which keys QUIC stateless resets with it).
    pub fn derived_secret(&self, purpose: &str) -> [u8; 32] {
        let mut context = ring::digest::Context::new(&ring::digest::SHA256);
        context.update(b"ringstore derived secret v1\0");
        context.update(purpose.as_bytes());
        context.update(b"\0");
        context.update(self.key.secret_der());
        let mut secret = [0u8; 32];
        secret.copy_from_slice(context.finish().as_ref());
        secret
    }

    fn quic_client_config_for(&self, alpn: &[u8]) -> Result<quinn::ClientConfig, TlsError> {
        let provider = provider();
        let verifier =
            WebPkiServerVerifier::builder_with_provider(self.roots()?, provider.clone()).build()?;
        let mut config = rustls::ClientConfig::builder_with_provider(provider)
            .with_protocol_versions(&[&rustls::version::TLS13])?
            .with_webpki_verifier(verifier)
            .with_client_auth_cert(self.chain.clone(), self.key.clone_key())?;
        config.alpn_protocols = vec![alpn.to_vec()];
        let quic = quinn::crypto::rustls::QuicClientConfig::try_from(config)?;
        Ok(quinn::ClientConfig::new(Arc::new(quic)))
    }
}

/// Which PEM input failed to parse.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum PemPart {
    Ca,
    Cert,
    Key,
}

/// The crypto provider of every TLS configuration: `ring`.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Whether `cert` (already verified against the cluster CA by the handshake) names `node`.
/// A listening node uses this to check that a frame's sender is who its certificate says.
pub fn cert_names_node(cert: &CertificateDer<'_>, node: NodeId) -> bool {
    let Ok(end_entity) = webpki::EndEntityCert::try_from(cert) else {
        return false;
    };
    let Ok(name) = ServerName::try_from(node_name(node)) else {
        return false;
    };
    end_entity.verify_is_valid_for_subject_name(&name).is_ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    // A derived secret is a function of the node's key and the purpose: the same when the
    // node's files are loaded again (a restart), different for another node or purpose.
    #[test]
    fn derived_secrets_survive_a_reload_and_differ_per_node_and_purpose() {
        let ca = ClusterCa::generate().unwrap();
        let cert = ca.issue_node_cert(NodeId(1)).unwrap();
        let first = NodeTls::from_pem_strings(&ca, &cert).unwrap();
        let reloaded = NodeTls::from_pem_strings(&ca, &cert).unwrap();
        let other =
            NodeTls::from_pem_strings(&ca, &ca.issue_node_cert(NodeId(2)).unwrap()).unwrap();
        let reset = first.derived_secret("reset");
        assert_eq!(reset, reloaded.derived_secret("reset"));
        assert_ne!(reset, other.derived_secret("reset"));
        assert_ne!(reset, first.derived_secret("cid"));
    }

    // A node certificate names its node and no other, and the PEM parts load back.
    #[test]
    fn node_certificates_name_their_node() {
        let ca = ClusterCa::generate().unwrap();
        let cert = ca.issue_node_cert(NodeId(7)).unwrap();
        let tls = NodeTls::from_pem_strings(&ca, &cert).unwrap();
        assert!(cert_names_node(&tls.chain[0], NodeId(7)));
        assert!(!cert_names_node(&tls.chain[0], NodeId(8)));
        assert!(!cert_names_node(&tls.chain[0], NodeId(77)));
        tls.quic_server_config().unwrap();
        tls.quic_client_config().unwrap();
    }

    // A client certificate names no node, so a connection presenting it can never pass as a
    // peer; it still builds a native client configuration.
    #[test]
    fn client_certificates_name_no_node() {
        let ca = ClusterCa::generate().unwrap();
        let cert = ca.issue_client_cert().unwrap();
        let tls = NodeTls::from_pem_strings(&ca, &cert).unwrap();
        for id in [0, 1, 7, u64::MAX] {
            assert!(!cert_names_node(&tls.chain[0], NodeId(id)));
        }
        tls.quic_native_client_config().unwrap();
    }

    // A CA saved to files loads back and still issues certificates that load as node TLS.
    #[test]
    fn ca_and_certs_round_trip_through_files() {
        let dir = tempfile::tempdir().unwrap();
        let path = |name: &str| dir.path().join(name);
        let ca = ClusterCa::generate().unwrap();
        ca.save(&path("ca.pem"), &path("ca.key")).unwrap();
        let loaded = ClusterCa::load(&path("ca.pem"), &path("ca.key")).unwrap();
        assert_eq!(loaded.cert_pem(), ca.cert_pem());
        let cert = loaded.issue_node_cert(NodeId(1)).unwrap();
        cert.save(&path("n1.pem"), &path("n1.key")).unwrap();
        NodeTls::load(&path("ca.pem"), &path("n1.pem"), &path("n1.key")).unwrap();
        // A key file where a certificate belongs is named in the error.
        let err = NodeTls::load(&path("ca.pem"), &path("n1.key"), &path("n1.key"))
            .err()
            .unwrap();
        assert!(err.to_string().contains("n1.key"), "{err}");
    }
}
