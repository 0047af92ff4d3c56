//! The grading rubric of `docs/scan-grading.md`, as code: per-suite findings
//! (which give the WEAK / INSECURE flags) and protocol, order and certificate
//! findings; the grade is the worst cap of all findings, A+ when there is none.
//!
//! Keep this file and the document in step: each rule here is one row there.
//!
//! # Security
//! Pure: reads a finished report, touches nothing.
//!
//! # Standards
//! RFC 9325 (BCP 195, TLS recommendations), RFC 8996 (TLS 1.0/1.1 deprecated),
//! RFC 7568 (SSLv3 deprecated), RFC 7465 (RC4 prohibited), RFC 7457 (attacks),
//! CVE-2014-3566 (POODLE), CVE-2016-2183 (Sweet32), CVE-2015-4000 (Logjam),
//! CVE-2015-0204 (FREAK).

use std::fmt;

use postern_tls::SuiteInfo;
use serde::{Serialize, Serializer};

use super::{Chain, ProtocolResult, ProtocolVersion};

/// The overall grade, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Grade {
    /// No finding at all.
    APlus,
    /// Sound, with a minor gap (CBC besides AEAD, no TLS 1.3, CCM-8).
    A,
    /// Sound suites, but the server lets the client pick among them.
    AMinus,
    /// Legacy but not broken (TLS 1.0/1.1, no forward secrecy for some
    /// suites, DH below 2048 bits, small RSA key, SHA-1 signature).
    B,
    /// Weak (no TLS 1.2, 64-bit block ciphers, no forward secrecy at all).
    C,
    /// Broken (SSLv3, RC4, NULL, anonymous, EXPORT, DH below 1024 bits, …).
    F,
}

impl Grade {
    /// `A+`, `A`, `A-`, `B`, `C`, `F`.
    pub fn as_str(self) -> &'static str {
        match self {
            Grade::APlus => "A+",
            Grade::A => "A",
            Grade::AMinus => "A-",
            Grade::B => "B",
            Grade::C => "C",
            Grade::F => "F",
        }
    }

    /// Parses `A+`, `a`, `A-`, `B`, `C`, `F`.
    pub fn parse(s: &str) -> Option<Grade> {
        Some(match s.trim().to_ascii_uppercase().as_str() {
            "A+" => Grade::APlus,
            "A" => Grade::A,
            "A-" => Grade::AMinus,
            "B" => Grade::B,
            "C" => Grade::C,
            "F" => Grade::F,
            _ => return None,
        })
    }
}

impl fmt::Display for Grade {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Serialize for Grade {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// One rule that fired: the grade it caps at and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct GradeReason {
    /// The best grade possible with this finding.
    pub cap: Grade,
    /// What was found, with the suites or versions concerned.
    pub text: String,
}

/// Flags of one accepted suite.
#[allow(clippy::struct_excessive_bools)] // independent report flags, not a state machine
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SuiteFlags {
    /// Ephemeral key exchange (ECDHE, DHE, or any TLS 1.3 suite).
    pub forward_secrecy: bool,
    /// An AEAD cipher (GCM, ChaCha20-Poly1305, CCM).
    pub aead: bool,
    /// At least one finding capping the grade at B, C or A/A- (see `issues`).
    pub weak: bool,
    /// At least one finding capping the grade at F.
    pub insecure: bool,
    /// The findings, in words.
    pub issues: Vec<String>,
}

/// One per-suite rule that fired.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SuiteFinding {
    /// Grade cap.
    pub cap: Grade,
    /// The rule, in words.
    pub text: &'static str,
}

const NULL_CIPHER: &str = "NULL cipher: no encryption";
const ANON: &str = "anonymous key exchange: the server is not authenticated";
const EXPORT: &str = "EXPORT-grade cryptography (FREAK, CVE-2015-0204)";
const RC4: &str = "RC4 (prohibited by RFC 7465)";
const SHORT_KEY: &str = "cipher key shorter than 112 bits";
const DH_1024: &str = "DH parameters below 1024 bits (Logjam, CVE-2015-4000)";
const BLOCK64: &str = "64-bit block cipher (Sweet32, CVE-2016-2183)";
const NO_FS: &str = "no forward secrecy (static RSA or ECDH key exchange)";
const DH_2048: &str = "DH parameters below 2048 bits";
const EC_224: &str = "elliptic curve below 224 bits";
const CBC: &str = "CBC mode (MAC-then-encrypt; padding-oracle attacks such as Lucky13)";
const CCM8: &str = "AES-CCM-8 (64-bit authentication tag)";

/// The per-suite rules for an accepted suite, given the key exchange the
/// server actually used (`dh_bits` for DHE, `ec_bits` for an ECDHE curve).
pub fn suite_findings(
    info: &SuiteInfo,
    dh_bits: Option<u32>,
    ec_bits: Option<u32>,
) -> Vec<SuiteFinding> {
    let mut out = Vec::new();
    let mut add = |cap, text| out.push(SuiteFinding { cap, text });
    if info.kx == "none" || info.cipher == "NULL" {
        add(Grade::F, NULL_CIPHER);
    }
    if info.auth == "anon" {
        add(Grade::F, ANON);
    }
    if info.iana.contains("EXPORT") {
        add(Grade::F, EXPORT);
    }
    if info.cipher.starts_with("RC4") {
        add(Grade::F, RC4);
    }
    if info.cipher != "NULL" && info.bits < 112 && !info.cipher.starts_with("RC4") {
        add(Grade::F, SHORT_KEY);
    }
    if dh_bits.is_some_and(|b| b < 1024) {
        add(Grade::F, DH_1024);
    }
    if info.cipher.starts_with("3DES") || info.cipher.starts_with("IDEA") {
        add(Grade::C, BLOCK64);
    }
    if !info.is_forward_secret() && info.kx != "none" && info.auth != "anon" {
        add(Grade::B, NO_FS);
    }
    if dh_bits.is_some_and(|b| (1024..2048).contains(&b)) {
        add(Grade::B, DH_2048);
    }
    if ec_bits.is_some_and(|b| b < 224) {
        add(Grade::B, EC_224);
    }
    if info.cipher.ends_with("-CBC") && !info.cipher.starts_with("3DES") {
        add(Grade::A, CBC);
    }
    if info.cipher.ends_with("CCM8") {
        add(Grade::A, CCM8);
    }
    out
}

/// Flags for the report from the findings.
pub fn suite_flags(info: &SuiteInfo, findings: &[SuiteFinding]) -> SuiteFlags {
    SuiteFlags {
        forward_secrecy: info.is_forward_secret(),
        aead: info.aead,
        weak: findings.iter().any(|f| f.cap != Grade::F),
        insecure: findings.iter().any(|f| f.cap == Grade::F),
        issues: findings.iter().map(|f| f.text.to_owned()).collect(),
    }
}

/// The grade and every rule that fired (worst first).
pub fn grade(protocols: &[ProtocolResult], chains: &[Chain]) -> (Grade, Vec<GradeReason>) {
    let mut reasons: Vec<GradeReason> = Vec::new();
    let mut add = |cap: Grade, text: String| reasons.push(GradeReason { cap, text });
    let accepted: Vec<&ProtocolResult> = protocols.iter().filter(|p| p.accepted).collect();
    let has = |v: ProtocolVersion| accepted.iter().any(|p| p.version == v);

    if accepted.is_empty() {
        add(Grade::F, "no SSL/TLS protocol version was accepted".into());
    }
    if has(ProtocolVersion::Ssl3) {
        add(
            Grade::F,
            "SSLv3 accepted (POODLE, CVE-2014-3566; prohibited by RFC 7568)".into(),
        );
    }
    if !accepted.is_empty() && !has(ProtocolVersion::Tls12) && !has(ProtocolVersion::Tls13) {
        let best = accepted.iter().map(|p| p.version).max();
        add(
            Grade::C,
            format!(
                "neither TLS 1.2 nor TLS 1.3 accepted (best: {})",
                best.map_or("none", ProtocolVersion::name)
            ),
        );
    }
    for v in [ProtocolVersion::Tls10, ProtocolVersion::Tls11] {
        if has(v) {
            add(
                Grade::B,
                format!("{} accepted (deprecated by RFC 8996)", v.name()),
            );
        }
    }
    if !accepted.is_empty() && !has(ProtocolVersion::Tls13) {
        add(Grade::A, "TLS 1.3 not accepted".into());
    }

    // Per-suite findings, grouped by rule, naming the suites.
    let all_suites: Vec<(ProtocolVersion, &super::AcceptedSuite)> = accepted
        .iter()
        .flat_map(|p| p.suites.iter().map(move |s| (p.version, s)))
        .collect();
    let mut rules: Vec<(Grade, String, Vec<String>)> = Vec::new();
    for (v, s) in &all_suites {
        let Some(info) = s.info() else { continue };
        for f in suite_findings(info, s.dh_bits(), s.ec_bits()) {
            let who = format!("{} {}", v.name(), s.display_name());
            match rules.iter_mut().find(|(_, t, _)| t == f.text) {
                Some((_, _, list)) => {
                    if !list.contains(&who) {
                        list.push(who);
                    }
                }
                None => rules.push((f.cap, f.text.to_owned(), vec![who])),
            }
        }
    }
    for (cap, text, who) in rules {
        add(cap, format!("{text}: {}", list_some(&who)));
    }
    if !all_suites.is_empty() {
        if all_suites.iter().all(|(_, s)| !s.flags.forward_secrecy) {
            add(
                Grade::C,
                "no suite with forward secrecy: a stolen server key decrypts every recorded session"
                    .into(),
            );
        }
        if all_suites.iter().all(|(_, s)| !s.flags.aead) {
            add(
                Grade::B,
                "no AEAD suite (GCM or ChaCha20-Poly1305) at all".into(),
            );
        }
    }
    for p in &accepted {
        if p.version != ProtocolVersion::Tls13 && p.server_order_enforced == Some(false) {
            add(
                Grade::AMinus,
                format!(
                    "{}: the server follows the client's suite order, so a client that \
                     offers a weaker suite first gets it",
                    p.version.name()
                ),
            );
        }
    }

    for chain in chains {
        let Some(leaf) = chain.certs.first() else {
            continue;
        };
        if leaf.unparsed {
            continue;
        }
        let who = format!("certificate {} ({})", leaf.subject, chain.seen_with);
        match leaf.key_type.as_str() {
            "RSA" if leaf.key_bits < 1024 => add(
                Grade::F,
                format!("{who}: RSA key of {} bits (below 1024)", leaf.key_bits),
            ),
            "RSA" if leaf.key_bits < 2048 => add(
                Grade::B,
                format!("{who}: RSA key of {} bits (below 2048)", leaf.key_bits),
            ),
            "DSA" => add(Grade::B, format!("{who}: DSA key")),
            t if t.starts_with("ECDSA") && leaf.key_bits != 0 && leaf.key_bits < 224 => add(
                Grade::B,
                format!("{who}: EC key of {} bits (below 224)", leaf.key_bits),
            ),
            _ => {}
        }
        let sig = leaf.signature.to_ascii_lowercase();
        if sig.contains("md5") || sig.contains("md2") {
            add(Grade::F, format!("{who}: signed with {}", leaf.signature));
        } else if sig.contains("sha1") || sig.ends_with("with-sha1") {
            add(
                Grade::B,
                format!("{who}: signed with SHA-1 ({})", leaf.signature),
            );
        }
    }

    reasons.sort_by_key(|r| std::cmp::Reverse(r.cap));
    let grade = reasons.iter().map(|r| r.cap).max().unwrap_or(Grade::APlus);
    if grade == Grade::APlus {
        reasons.push(GradeReason {
            cap: Grade::APlus,
            text: "TLS 1.2 or newer only, TLS 1.3 accepted, every suite forward-secret AEAD, \
                   server order enforced"
                .into(),
        });
    }
    (grade, reasons)
}

fn list_some(items: &[String]) -> String {
    const SHOWN: usize = 6;
    if items.len() <= SHOWN {
        items.join(", ")
    } else {
        format!(
            "{} and {} more",
            items[..SHOWN].join(", "),
            items.len() - SHOWN
        )
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::scan::{AcceptedSuite, ChainCert};

    fn suite(id: u16, kx_detail: &str, kx_bits: Option<u32>) -> AcceptedSuite {
        let info = postern_tls::suites::by_id(id).unwrap();
        let dh = kx_detail.starts_with("DH ").then_some(kx_bits).flatten();
        let ec = kx_detail.starts_with("ECDH ").then_some(kx_bits).flatten();
        let findings = suite_findings(info, dh, ec);
        AcceptedSuite {
            id,
            hex: format!("0x{id:04x}"),
            iana: info.iana.into(),
            openssl: info.openssl.map(Into::into),
            kx: info.kx.into(),
            auth: info.auth.into(),
            cipher: info.cipher.into(),
            bits: info.bits,
            mac: info.mac.into(),
            kx_detail: kx_detail.into(),
            kx_bits,
            group: None,
            flags: suite_flags(info, &findings),
        }
    }

    fn proto(
        v: ProtocolVersion,
        suites: Vec<AcceptedSuite>,
        order: Option<bool>,
    ) -> ProtocolResult {
        ProtocolResult {
            version: v,
            accepted: !suites.is_empty(),
            suites,
            server_order_enforced: order,
            note: None,
        }
    }

    fn modern() -> Vec<ProtocolResult> {
        vec![
            proto(
                ProtocolVersion::Tls12,
                vec![
                    suite(0xc02c, "ECDH x25519", Some(253)),
                    suite(0xc02b, "ECDH x25519", Some(253)),
                ],
                Some(true),
            ),
            proto(
                ProtocolVersion::Tls13,
                vec![suite(0x1302, "ECDH x25519", Some(253))],
                None,
            ),
        ]
    }

    fn caps(reasons: &[GradeReason]) -> Vec<(Grade, &str)> {
        reasons.iter().map(|r| (r.cap, r.text.as_str())).collect()
    }

    #[test]
    fn suite_rules_table() {
        // (id, kx detail, bits, worst cap, weak, insecure)
        type Case = (u16, &'static str, Option<u32>, Option<Grade>, bool, bool);
        let cases: &[Case] = &[
            // id, kx detail, bits, worst cap, weak, insecure
            (0x1301, "ECDH x25519", Some(253), None, false, false),
            (0xc02f, "ECDH secp256r1", Some(256), None, false, false),
            (
                0xc013,
                "ECDH x25519",
                Some(253),
                Some(Grade::A),
                true,
                false,
            ), // CBC
            (0x009f, "DH 2048", Some(2048), None, false, false),
            (0x009f, "DH 1024", Some(1024), Some(Grade::B), true, false),
            (0x0033, "DH 512", Some(512), Some(Grade::F), true, true),
            (0x009d, "RSA 2048", Some(2048), Some(Grade::B), true, false), // no FS
            (0x000a, "RSA 2048", Some(2048), Some(Grade::C), true, false), // 3DES
            (0x0005, "RSA 2048", Some(2048), Some(Grade::F), true, true),  // RC4
            (0x0003, "RSA 2048", Some(2048), Some(Grade::F), true, true),  // EXPORT
            (0x0009, "RSA 2048", Some(2048), Some(Grade::F), true, true),  // DES
            (0x0002, "RSA 2048", Some(2048), Some(Grade::F), true, true),  // NULL
            (0x0034, "DH 2048", Some(2048), Some(Grade::F), true, true),   // anon
            (
                0x1305,
                "ECDH x25519",
                Some(253),
                Some(Grade::A),
                true,
                false,
            ), // CCM-8
        ];
        for (id, detail, bits, cap, weak, insecure) in cases {
            let s = suite(*id, detail, *bits);
            let info = s.info().unwrap();
            let dh = s.dh_bits();
            let ec = s.ec_bits();
            let worst = suite_findings(info, dh, ec).iter().map(|f| f.cap).max();
            assert_eq!(worst, *cap, "{info}");
            assert_eq!(
                (s.flags.weak, s.flags.insecure),
                (*weak, *insecure),
                "{info}"
            );
            // Weak or insecure always says why.
            assert_eq!(s.flags.issues.is_empty(), !weak, "{info}");
        }
    }

    #[test]
    fn modern_server_is_a_plus() {
        let (g, reasons) = grade(&modern(), &[]);
        assert_eq!(g, Grade::APlus);
        assert_eq!(reasons.len(), 1);
        assert_eq!(reasons[0].cap, Grade::APlus);
    }

    #[test]
    fn protocol_rules() {
        let (g, r) = grade(&[], &[]);
        assert_eq!(g, Grade::F);
        assert_eq!(
            caps(&r),
            vec![(Grade::F, "no SSL/TLS protocol version was accepted")]
        );

        let mut p = modern();
        p.push(proto(
            ProtocolVersion::Tls10,
            vec![suite(0xc013, "ECDH x25519", Some(253))],
            None,
        ));
        let (g, r) = grade(&p, &[]);
        assert_eq!(g, Grade::B);
        assert_eq!(r[0].text, "TLS 1.0 accepted (deprecated by RFC 8996)");

        let mut p = modern();
        p.push(proto(
            ProtocolVersion::Ssl3,
            vec![suite(0x002f, "RSA 2048", Some(2048))],
            None,
        ));
        assert_eq!(grade(&p, &[]).0, Grade::F);

        // TLS 1.2 only: A.
        let (g, r) = grade(&modern()[..1], &[]);
        assert_eq!(g, Grade::A);
        assert_eq!(caps(&r), vec![(Grade::A, "TLS 1.3 not accepted")]);

        // Client order on TLS 1.2: A-; on TLS 1.3: not graded.
        let mut p = modern();
        p[0].server_order_enforced = Some(false);
        assert_eq!(grade(&p, &[]).0, Grade::AMinus);
        let mut p = modern();
        p[1].suites.push(suite(0x1301, "ECDH x25519", Some(253)));
        p[1].server_order_enforced = Some(false);
        assert_eq!(grade(&p, &[]).0, Grade::APlus);

        // Only TLS 1.1 with static RSA CBC: C, no FS at all, no AEAD.
        let p = vec![proto(
            ProtocolVersion::Tls11,
            vec![suite(0x002f, "RSA 2048", Some(2048))],
            None,
        )];
        let (g, r) = grade(&p, &[]);
        assert_eq!(g, Grade::C);
        let texts: Vec<&str> = r.iter().map(|x| x.text.as_str()).collect();
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("no suite with forward secrecy"))
        );
        assert!(texts.iter().any(|t| t.starts_with("no AEAD suite")));
        assert!(
            texts
                .iter()
                .any(|t| t.starts_with("neither TLS 1.2 nor TLS 1.3 accepted (best: TLS 1.1)"))
        );
        // Worst first.
        assert!(r.windows(2).all(|w| w[0].cap >= w[1].cap));
    }

    #[test]
    fn suite_rules_name_the_suites() {
        let mut p = modern();
        p[0].suites.push(suite(0x000a, "RSA 2048", Some(2048)));
        let (g, r) = grade(&p, &[]);
        assert_eq!(g, Grade::C);
        assert_eq!(
            r[0].text,
            "64-bit block cipher (Sweet32, CVE-2016-2183): TLS 1.2 DES-CBC3-SHA"
        );
    }

    fn cert(key_type: &str, key_bits: u32, signature: &str) -> Chain {
        Chain {
            seen_with: "TLS 1.3 TLS_AES_256_GCM_SHA384".into(),
            certs: vec![ChainCert {
                subject: "CN=mx.example".into(),
                issuer: "CN=CA".into(),
                sans: vec![],
                serial: "01".into(),
                not_before: String::new(),
                not_after: String::new(),
                days_left: -3,
                key_type: key_type.into(),
                key_bits,
                signature: signature.into(),
                self_signed: false,
                is_ca: false,
                unparsed: false,
            }],
        }
    }

    #[test]
    fn certificate_rules() {
        let p = modern();
        for (chain, want) in [
            (cert("RSA", 2048, "sha256WithRSAEncryption"), Grade::APlus),
            (cert("ECDSA P-256", 256, "ecdsa-with-SHA256"), Grade::APlus),
            (cert("RSA", 1024, "sha256WithRSAEncryption"), Grade::B),
            (cert("RSA", 512, "sha256WithRSAEncryption"), Grade::F),
            (cert("RSA", 2048, "sha1WithRSAEncryption"), Grade::B),
            (cert("ECDSA P-256", 256, "ecdsa-with-SHA1"), Grade::B),
            (cert("RSA", 2048, "md5WithRSAEncryption"), Grade::F),
            (cert("DSA", 2048, "dsa-with-sha256"), Grade::B),
        ] {
            let (g, r) = grade(&p, std::slice::from_ref(&chain));
            assert_eq!(g, want, "{:?}: {r:?}", chain.certs[0]);
        }
        // Expiry is not graded here (days_left = -3 above).
    }

    #[test]
    fn grade_names_round_trip() {
        for g in [
            Grade::APlus,
            Grade::A,
            Grade::AMinus,
            Grade::B,
            Grade::C,
            Grade::F,
        ] {
            assert_eq!(Grade::parse(g.as_str()), Some(g));
        }
        assert_eq!(Grade::parse("a-"), Some(Grade::AMinus));
        assert_eq!(Grade::parse("D"), None);
        assert!(Grade::APlus < Grade::F);
    }
}
