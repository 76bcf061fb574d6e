//! What the application configures: the server's certificate (replaceable while the
//! server runs) and the client's trust (roots, client certificate, or none at all for
//! benchmarks against a self-signed server).

use std::path::Path;
use std::sync::{Arc, RwLock};

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{
    ClientConfig, ClientConnection, DigitallySignedStruct, RootCertStore, ServerConfig,
    ServerConnection, SignatureScheme,
};

use super::layer::TlsLayer;
use crate::runtime::error::Error;

/// The ALPN protocol a WebSocket upgrade rides on (RFC 6455 is HTTP/1.1's Upgrade).
const HTTP_1_1: &[u8] = b"http/1.1";

/// The crypto provider of the configurations made here: `ring` (rustls's default,
/// aws-lc-rs, needs cmake to build).
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn setup(what: impl std::fmt::Display) -> Error {
    Error::TlsConfig(what.to_string())
}

/// Reads a certificate chain (leaf first) from PEM.
pub fn certs_from_pem(pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, Error> {
    let certs = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| setup(format!("certificate PEM: {e}")))?;
    if certs.is_empty() {
        return Err(setup("no CERTIFICATE in the PEM"));
    }
    Ok(certs)
}

/// Reads a private key (PKCS#8, PKCS#1 or SEC1) from PEM.
pub fn key_from_pem(pem: &[u8]) -> Result<PrivateKeyDer<'static>, Error> {
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| setup(format!("private key PEM: {e}")))
}

fn read(path: &Path) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|e| setup(format!("{}: {e}", path.display())))
}

/// The server's TLS configuration, shared by every worker: each new connection takes
/// the configuration current when it arrives, so [`replace`](Self::replace) (a renewed
/// certificate) applies to new connections while the open ones keep theirs.
#[derive(Clone)]
pub struct ServerTls {
    current: Arc<RwLock<Arc<ServerConfig>>>,
}

impl std::fmt::Debug for ServerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerTls").finish_non_exhaustive()
    }
}

impl ServerTls {
    /// From a rustls configuration of the application's own (client certificates, a
    /// certificate resolver per SNI name, another provider). ALPN is set to `http/1.1`
    /// if the configuration names no protocol.
    pub fn new(config: ServerConfig) -> Self {
        ServerTls {
            current: Arc::new(RwLock::new(Arc::new(with_alpn(config)))),
        }
    }

    /// From a certificate chain and its key: TLS 1.2 and 1.3 with rustls's safe
    /// defaults on the `ring` provider, no client certificates, ALPN `http/1.1`.
    pub fn from_der(
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, Error> {
        Ok(ServerTls::new(server_config(certs, key)?))
    }

    /// From PEM bytes: the chain (leaf first) and the private key.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> Result<Self, Error> {
        ServerTls::from_der(certs_from_pem(cert_pem)?, key_from_pem(key_pem)?)
    }

    /// From PEM files: the chain (leaf first) and the private key.
    pub fn from_pem_files(cert: impl AsRef<Path>, key: impl AsRef<Path>) -> Result<Self, Error> {
        ServerTls::from_pem(&read(cert.as_ref())?, &read(key.as_ref())?)
    }

    /// Replaces the configuration: connections that arrive from now on use `config`.
    pub fn replace(&self, config: ServerConfig) {
        let config = Arc::new(with_alpn(config));
        *self.current.write().unwrap_or_else(|e| e.into_inner()) = config;
    }

    /// Replaces the certificate and key from PEM files (a renewed certificate); on an
    /// error the current one stays.
    pub fn reload_pem_files(
        &self,
        cert: impl AsRef<Path>,
        key: impl AsRef<Path>,
    ) -> Result<(), Error> {
        let certs = certs_from_pem(&read(cert.as_ref())?)?;
        let key = key_from_pem(&read(key.as_ref())?)?;
        self.replace(server_config(certs, key)?);
        Ok(())
    }

    /// The configuration new connections get now.
    pub fn config(&self) -> Arc<ServerConfig> {
        self.current
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The TLS layer of a connection that just arrived.
    pub(crate) fn accept(&self) -> Result<TlsLayer, rustls::Error> {
        Ok(TlsLayer::new(ServerConnection::new(self.config())?.into()))
    }
}

fn server_config(
    certs: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
) -> Result<ServerConfig, Error> {
    ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(setup)?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(setup)
}

fn with_alpn(mut config: ServerConfig) -> ServerConfig {
    if config.alpn_protocols.is_empty() {
        config.alpn_protocols = vec![HTTP_1_1.to_vec()];
    }
    config
}

/// The client's TLS configuration for `wss://` URLs. The default trusts Mozilla's root
/// certificates as compiled into the `webpki-roots` crate (the same on every machine and
/// in containers without a system store); [`with_roots`](Self::with_roots) and
/// [`from_ca_pem_file`](Self::from_ca_pem_file) trust others (a private CA), and
/// [`new`](Self::new) takes a rustls configuration of the application's own (client
/// certificates: see [`with_client_cert`](Self::with_client_cert)).
#[derive(Clone)]
pub struct ClientTls {
    config: Arc<ClientConfig>,
}

impl std::fmt::Debug for ClientTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientTls").finish_non_exhaustive()
    }
}

impl Default for ClientTls {
    fn default() -> Self {
        let mut roots = RootCertStore::empty();
        roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
        ClientTls::with_roots(roots)
    }
}

impl ClientTls {
    /// From a rustls configuration of the application's own. ALPN is set to
    /// `http/1.1` if the configuration names no protocol.
    pub fn new(mut config: ClientConfig) -> Self {
        if config.alpn_protocols.is_empty() {
            config.alpn_protocols = vec![HTTP_1_1.to_vec()];
        }
        ClientTls {
            config: Arc::new(config),
        }
    }

    /// Trusting `roots` only.
    pub fn with_roots(roots: RootCertStore) -> Self {
        ClientTls::new(client_builder(roots).with_no_client_auth())
    }

    /// Trusting `roots`, and presenting a client certificate (chain and key) to servers
    /// that ask for one.
    pub fn with_client_cert(
        roots: RootCertStore,
        certs: Vec<CertificateDer<'static>>,
        key: PrivateKeyDer<'static>,
    ) -> Result<Self, Error> {
        let config = client_builder(roots)
            .with_client_auth_cert(certs, key)
            .map_err(setup)?;
        Ok(ClientTls::new(config))
    }

    /// Trusting the certificates in a PEM file only (a private CA, or a self-signed
    /// server's own certificate).
    pub fn from_ca_pem_file(path: impl AsRef<Path>) -> Result<Self, Error> {
        ClientTls::from_ca_pem(&read(path.as_ref())?)
    }

    /// Trusting the certificates in PEM bytes only.
    pub fn from_ca_pem(pem: &[u8]) -> Result<Self, Error> {
        let mut roots = RootCertStore::empty();
        for cert in certs_from_pem(pem)? {
            roots.add(cert).map_err(setup)?;
        }
        Ok(ClientTls::with_roots(roots))
    }

    /// **No verification at all**: any certificate is accepted for any name (the
    /// handshake's signatures are still checked). For benchmarks against a server with a
    /// throw-away self-signed certificate, never for real peers: anyone on the path can
    /// read and change the traffic.
    pub fn insecure() -> Self {
        let provider = provider();
        let verifier = Arc::new(AcceptAnyCertificate {
            algorithms: provider.signature_verification_algorithms,
        });
        let config = ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring supports the default versions")
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth();
        ClientTls::new(config)
    }

    /// The rustls configuration.
    pub fn config(&self) -> &Arc<ClientConfig> {
        &self.config
    }

    /// The TLS layer of a connection to `name`.
    pub(crate) fn connect(&self, name: ServerName<'static>) -> Result<TlsLayer, rustls::Error> {
        Ok(TlsLayer::new(
            ClientConnection::new(self.config.clone(), name)?.into(),
        ))
    }
}

fn client_builder(
    roots: RootCertStore,
) -> rustls::ConfigBuilder<ClientConfig, rustls::client::WantsClientCert> {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("ring supports the default versions")
        .with_root_certificates(roots)
}

/// The verifier of [`ClientTls::insecure`]: every certificate, every name.
#[derive(Debug)]
struct AcceptAnyCertificate {
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for AcceptAnyCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}
