//! A test certificate authority issuing leaf certificates on demand.

use std::path::{Path, PathBuf};

use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

/// Key algorithm of an issued certificate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// ECDSA P-256.
    EcdsaP256,
    /// RSA 2048.
    Rsa2048,
}

/// A CA whose root tests trust.
pub struct TestCa {
    issuer: Issuer<'static, KeyPair>,
    cert_pem: String,
    cert_der: Vec<u8>,
}

/// An issued certificate.
pub struct Issued {
    /// Leaf certificate (PEM).
    pub cert_pem: String,
    /// Private key (PKCS#8 PEM).
    pub key_pem: String,
    /// Leaf DER.
    pub cert_der: Vec<u8>,
}

impl Issued {
    /// Writes `<name>.crt` and `<name>.key` into `dir`; returns their paths.
    pub fn write(&self, dir: &Path, name: &str) -> (PathBuf, PathBuf) {
        let c = dir.join(format!("{name}.crt"));
        let k = dir.join(format!("{name}.key"));
        std::fs::write(&c, &self.cert_pem).expect("write test cert");
        std::fs::write(&k, &self.key_pem).expect("write test key");
        (c, k)
    }
}

impl TestCa {
    /// A new CA ("Postern Test CA").
    pub fn new() -> Self {
        let key = KeyPair::generate().expect("generate CA key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, "Postern Test CA");
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params.self_signed(&key).expect("self-sign CA");
        Self {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// The CA certificate (PEM).
    pub fn cert_pem(&self) -> &str {
        &self.cert_pem
    }

    /// A CA signed by this one (an intermediate): certificates it issues
    /// chain leaf → intermediate → this root. A server that sends only the
    /// leaf has an incomplete chain.
    #[must_use]
    pub fn intermediate(&self, common_name: &str) -> TestCa {
        let key = KeyPair::generate().expect("generate intermediate key");
        let mut params = CertificateParams::new(Vec::<String>::new()).expect("CA params");
        params
            .distinguished_name
            .push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let cert = params
            .signed_by(&key, &self.issuer)
            .expect("sign intermediate");
        TestCa {
            cert_pem: cert.pem(),
            cert_der: cert.der().to_vec(),
            issuer: Issuer::new(params, key),
        }
    }

    /// A self-signed leaf certificate for `names` (no CA at all).
    #[must_use]
    pub fn self_signed(names: &[&str]) -> Issued {
        let key = KeyPair::generate().expect("generate key");
        let mut params =
            CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("params");
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        let cert = params.self_signed(&key).expect("self-sign");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        }
    }

    /// The CA certificate, DER (e.g. for a DANE-TA TLSA record).
    pub fn cert_der(&self) -> &[u8] {
        &self.cert_der
    }

    /// A root store holding only this CA.
    pub fn root_store(&self) -> rustls::RootCertStore {
        let mut roots = rustls::RootCertStore::empty();
        roots
            .add(rustls_pki_types::CertificateDer::from(
                self.cert_der.clone(),
            ))
            .expect("add test CA");
        roots
    }

    /// Issues an ECDSA P-256 leaf for `names`, valid from yesterday for a year.
    pub fn issue(&self, names: &[&str]) -> Issued {
        self.issue_with(names, KeyKind::EcdsaP256, None)
    }

    /// Issues a leaf with the given key kind and, optionally, validity (not_before, not_after).
    pub fn issue_with(
        &self,
        names: &[&str],
        kind: KeyKind,
        validity: Option<(time::OffsetDateTime, time::OffsetDateTime)>,
    ) -> Issued {
        let key = match kind {
            KeyKind::EcdsaP256 => KeyPair::generate().expect("generate leaf key"),
            KeyKind::Rsa2048 => {
                KeyPair::generate_for(&rcgen::PKCS_RSA_SHA256).expect("generate RSA key")
            }
        };
        let mut params =
            CertificateParams::new(names.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>())
                .expect("leaf params");
        if let Some(first) = names.first() {
            params.distinguished_name.push(DnType::CommonName, *first);
        }
        let now = time::OffsetDateTime::now_utc();
        let (nb, na) = validity.unwrap_or((
            now - time::Duration::days(1),
            now + time::Duration::days(365),
        ));
        params.not_before = nb;
        params.not_after = na;
        let cert = params.signed_by(&key, &self.issuer).expect("sign leaf");
        Issued {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
            cert_der: cert.der().to_vec(),
        }
    }
}

impl Default for TestCa {
    fn default() -> Self {
        Self::new()
    }
}
