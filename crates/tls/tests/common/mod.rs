//! Test PKI (rcgen) and an in-memory rustls client ↔ server pump. No network.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::sync::Arc;

use postern_tls::{CertSettings, ClientHelloSummary};
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType, IsCa, Issuer,
    KeyPair, KeyUsagePurpose, SignatureAlgorithm,
};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, SupportedKxGroup, aws_lc_rs};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::server::Acceptor;
use rustls::{
    ClientConfig, ClientConnection, ConnectionCommon, DigitallySignedStruct, ServerConfig,
    ServerConnection, SignatureScheme, SupportedCipherSuite, SupportedProtocolVersion,
};
use time::{Duration, OffsetDateTime};

pub fn now() -> OffsetDateTime {
    OffsetDateTime::now_utc()
}

fn dn(cn: &str) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, cn);
    dn
}

fn ca_params(cn: &str) -> CertificateParams {
    let mut p = CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = dn(cn);
    p.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    p.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    p.not_before = now() - Duration::days(1);
    p.not_after = now() + Duration::days(3650);
    p
}

/// A self-signed root CA (ECDSA P-256).
pub fn root(cn: &str) -> CertifiedIssuer<'static, KeyPair> {
    CertifiedIssuer::self_signed(ca_params(cn), KeyPair::generate().unwrap()).unwrap()
}

/// An intermediate CA signed by `parent` with the validity given.
pub fn intermediate_with(
    cn: &str,
    parent: &Issuer<'_, KeyPair>,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> CertifiedIssuer<'static, KeyPair> {
    let mut p = ca_params(cn);
    p.not_before = not_before;
    p.not_after = not_after;
    CertifiedIssuer::signed_by(p, KeyPair::generate().unwrap(), parent).unwrap()
}

/// An intermediate CA signed by `parent`.
pub fn intermediate(cn: &str, parent: &Issuer<'_, KeyPair>) -> CertifiedIssuer<'static, KeyPair> {
    CertifiedIssuer::signed_by(ca_params(cn), KeyPair::generate().unwrap(), parent).unwrap()
}

/// A leaf certificate and its key.
pub struct Leaf {
    pub cert_pem: String,
    pub key_pem: String,
    pub der: CertificateDer<'static>,
}

/// Leaf for `names`, signed by `issuer`, with the key algorithm and validity given.
pub fn leaf_with(
    names: &[&str],
    issuer: &Issuer<'_, KeyPair>,
    alg: &'static SignatureAlgorithm,
    not_before: OffsetDateTime,
    not_after: OffsetDateTime,
) -> Leaf {
    let key = KeyPair::generate_for(alg).unwrap();
    let mut p =
        CertificateParams::new(names.iter().map(|n| (*n).to_owned()).collect::<Vec<_>>()).unwrap();
    p.distinguished_name = dn(names.first().copied().unwrap_or("no name"));
    p.not_before = not_before;
    p.not_after = not_after;
    let cert = p.signed_by(&key, issuer).unwrap();
    Leaf {
        cert_pem: cert.pem(),
        key_pem: key.serialize_pem(),
        der: cert.der().clone(),
    }
}

/// ECDSA P-256 leaf valid from yesterday for a year.
pub fn leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>) -> Leaf {
    leaf_with(
        names,
        issuer,
        &rcgen::PKCS_ECDSA_P256_SHA256,
        now() - Duration::days(1),
        now() + Duration::days(365),
    )
}

/// RSA-2048 leaf valid from yesterday for a year.
pub fn rsa_leaf(names: &[&str], issuer: &Issuer<'_, KeyPair>) -> Leaf {
    leaf_with(
        names,
        issuer,
        &rcgen::PKCS_RSA_SHA256,
        now() - Duration::days(1),
        now() + Duration::days(365),
    )
}

/// Writes `name.crt` (the PEM blocks concatenated) and `name.key` (mode 0600).
pub fn write_pair(dir: &Path, name: &str, chain: &[&str], key_pem: &str) -> CertSettings {
    let cert_path = dir.join(format!("{name}.crt"));
    let key_path = dir.join(format!("{name}.key"));
    std::fs::write(&cert_path, chain.concat()).unwrap();
    std::fs::write(&key_path, key_pem).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&key_path, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    CertSettings {
        cert_path,
        key_path,
        hostnames: Vec::new(),
    }
}

/// Leaf + intermediate written as a chain file, signed by a fresh root.
pub fn simple_chain(dir: &Path, name: &str, names: &[&str]) -> (CertSettings, Leaf) {
    let ca = root("Test Root");
    let inter = intermediate("Test Intermediate", &ca);
    let l = leaf(names, &inter);
    let cs = write_pair(dir, name, &[&l.cert_pem, &inter.pem()], &l.key_pem);
    (cs, l)
}

/// A client verifier that accepts any certificate but checks handshake
/// signatures, advertising only `schemes`.
#[derive(Debug)]
pub struct AcceptAny {
    pub schemes: Vec<SignatureScheme>,
    provider: Arc<CryptoProvider>,
}

impl AcceptAny {
    pub fn new(schemes: Option<Vec<SignatureScheme>>) -> Self {
        let provider = Arc::new(aws_lc_rs::default_provider());
        let schemes = schemes.unwrap_or_else(|| {
            provider
                .signature_verification_algorithms
                .supported_schemes()
        });
        Self { schemes, provider }
    }
}

impl ServerCertVerifier for AcceptAny {
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
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.provider.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

/// What a test client offers.
pub struct ClientOpts {
    pub versions: Vec<&'static SupportedProtocolVersion>,
    pub suites: Option<Vec<SupportedCipherSuite>>,
    pub groups: Option<Vec<&'static dyn SupportedKxGroup>>,
    pub schemes: Option<Vec<SignatureScheme>>,
    pub sni: bool,
    /// Verify against these roots (webpki) instead of accepting anything.
    pub roots: Option<Vec<CertificateDer<'static>>>,
}

impl Default for ClientOpts {
    fn default() -> Self {
        Self {
            versions: vec![&rustls::version::TLS13, &rustls::version::TLS12],
            suites: None,
            groups: None,
            schemes: None,
            sni: true,
            roots: None,
        }
    }
}

pub fn client_config(opts: ClientOpts) -> Arc<ClientConfig> {
    let mut provider = aws_lc_rs::default_provider();
    if let Some(s) = opts.suites {
        provider.cipher_suites = s;
    }
    if let Some(g) = opts.groups {
        provider.kx_groups = g;
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(provider))
        .with_protocol_versions(&opts.versions)
        .unwrap();
    let mut cfg = match opts.roots {
        Some(roots) => {
            let mut store = rustls::RootCertStore::empty();
            for r in roots {
                store.add(r).unwrap();
            }
            builder.with_root_certificates(store).with_no_client_auth()
        }
        None => builder
            .dangerous()
            .with_custom_certificate_verifier(Arc::new(AcceptAny::new(opts.schemes)))
            .with_no_client_auth(),
    };
    cfg.enable_sni = opts.sni;
    Arc::new(cfg)
}

/// The result of an in-memory handshake.
pub struct Outcome {
    pub client: ClientConnection,
    pub server: Option<ServerConnection>,
    pub offered: Option<ClientHelloSummary>,
    pub server_err: Option<rustls::Error>,
    pub client_err: Option<rustls::Error>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.server_err.is_none()
            && self.client_err.is_none()
            && self.server.as_ref().is_some_and(|s| !s.is_handshaking())
            && !self.client.is_handshaking()
    }

    /// DER of the leaf the server presented.
    pub fn presented_leaf(&self) -> CertificateDer<'static> {
        self.client.peer_certificates().unwrap()[0]
            .clone()
            .into_owned()
    }
}

fn feed<D>(conn: &mut ConnectionCommon<D>, bytes: &[u8]) -> Result<(), rustls::Error> {
    let mut rd = bytes;
    while !rd.is_empty() {
        conn.read_tls(&mut rd).unwrap();
        conn.process_new_packets()?;
    }
    Ok(())
}

fn drain<D>(conn: &mut ConnectionCommon<D>) -> Vec<u8> {
    let mut out = Vec::new();
    while conn.wants_write() {
        conn.write_tls(&mut out).unwrap();
    }
    out
}

/// Runs a full handshake in memory, reading the ClientHello through rustls'
/// `Acceptor` first (as smtpd does with `LazyConfigAcceptor`), then pumps
/// records both ways until nothing moves (tickets included).
pub fn handshake(
    client_cfg: Arc<ClientConfig>,
    name: &str,
    server_cfg: Arc<ServerConfig>,
) -> Outcome {
    let mut client =
        ClientConnection::new(client_cfg, ServerName::try_from(name.to_owned()).unwrap()).unwrap();
    let hello = drain(&mut client);
    let mut acceptor = Acceptor::default();
    acceptor.read_tls(&mut &hello[..]).unwrap();
    let mut offered = None;
    let refused = match acceptor.accept() {
        Ok(Some(accepted)) => {
            offered = Some(ClientHelloSummary::from_client_hello(
                &accepted.client_hello(),
            ));
            match accepted.into_connection(server_cfg) {
                Ok(conn) => Ok(conn),
                Err((e, alert)) => Err((e, alert)),
            }
        }
        Ok(None) => panic!("ClientHello incomplete"),
        Err((e, alert)) => Err((e, alert)),
    };
    let mut server = match refused {
        Ok(conn) => conn,
        Err((e, mut alert)) => {
            let mut bytes = Vec::new();
            alert.write_all(&mut bytes).unwrap();
            let client_err = feed(&mut client, &bytes).err();
            return Outcome {
                client,
                server: None,
                offered,
                server_err: Some(e),
                client_err,
            };
        }
    };

    let (mut server_err, mut client_err) = (None, None);
    loop {
        let to_client = drain(&mut server);
        if let Err(e) = feed(&mut client, &to_client) {
            client_err = Some(e);
            let alert = drain(&mut client);
            server_err = feed(&mut server, &alert).err();
            break;
        }
        let to_server = drain(&mut client);
        if let Err(e) = feed(&mut server, &to_server) {
            server_err = Some(e);
            let alert = drain(&mut server);
            client_err = feed(&mut client, &alert).err();
            break;
        }
        if to_client.is_empty() && to_server.is_empty() {
            break;
        }
    }
    Outcome {
        client,
        server: Some(server),
        offered,
        server_err,
        client_err,
    }
}

/// Feeds raw bytes (e.g. plaintext SMTP) to an `Acceptor` and returns its error.
pub fn accept_raw(bytes: &[u8]) -> Option<rustls::Error> {
    let mut acceptor = Acceptor::default();
    acceptor.read_tls(&mut &bytes[..]).unwrap();
    match acceptor.accept() {
        Ok(_) => None,
        Err((e, _)) => Some(e),
    }
}
