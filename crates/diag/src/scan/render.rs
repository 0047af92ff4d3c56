//! The text report of `postern tls scan`: protocols, suites per version in
//! server order (IANA and OpenSSL names, hex and decimal ids, key exchange,
//! bits, flags), order enforcement, groups, certificate chains, then the grade
//! and its reasons. Plain ASCII apart from names the server chose.
//!
//! # Security
//! Server-supplied text (banner, certificate names) was sanitised when read.

use std::fmt::Write as _;

use super::{AcceptedSuite, ScanReport, StartTls};

/// The report as text, ending with a newline.
pub fn render_text(r: &ScanReport) -> String {
    let mut o = String::new();
    let pre = match r.starttls {
        StartTls::Smtp => ", STARTTLS smtp",
        StartTls::None => ", TLS from the first byte",
    };
    let _ = writeln!(o, "TLS scan of {} ({}{pre})", r.host, r.address);
    if let Some(b) = &r.banner {
        let _ = writeln!(o, "Banner: 220 {b}");
    }
    let _ = writeln!(
        o,
        "Scanned {} with {} connections",
        r.scanned_at, r.connections
    );

    o.push_str("\nProtocols\n");
    for p in &r.protocols {
        let yes = if p.accepted { "yes" } else { "no" };
        match &p.note {
            Some(n) => {
                let _ = writeln!(o, "  {:<8} {yes:<4} ({n})", p.version.name());
            }
            None => {
                let _ = writeln!(o, "  {:<8} {yes}", p.version.name());
            }
        }
    }

    for p in r.protocols.iter().rev().filter(|p| p.accepted) {
        let order = match p.server_order_enforced {
            Some(true) => "yes",
            Some(false) => "no (the client's order wins)",
            None => "n/a (one suite)",
        };
        let _ = writeln!(
            o,
            "\n{} cipher suites in server-preferred order ({}), server order enforced: {order}",
            p.version.name(),
            p.suites.len()
        );
        suite_table(&mut o, &p.suites);
    }

    for g in &r.groups {
        let order = match g.server_order_enforced {
            Some(true) => "yes",
            Some(false) => "no (the client's order wins)",
            None => "n/a",
        };
        let _ = writeln!(
            o,
            "\nKey-exchange groups ({}), server order enforced: {order}",
            g.version.name()
        );
        for (i, e) in g.groups.iter().enumerate() {
            let _ = writeln!(o, "  {:>2}  {} (0x{:04x}, {})", i + 1, e.name, e.id, e.id);
        }
    }

    for c in &r.chains {
        let _ = writeln!(o, "\nCertificate chain (seen with {})", c.seen_with);
        for (i, cert) in c.certs.iter().enumerate() {
            let _ = writeln!(o, "  {i}  {}", cert.subject);
            if cert.unparsed {
                continue;
            }
            let _ = writeln!(
                o,
                "     issuer {}{}",
                cert.issuer,
                if cert.self_signed {
                    " (self-signed)"
                } else {
                    ""
                }
            );
            let _ = writeln!(
                o,
                "     key {} ({} bits), signature {}",
                cert.key_type, cert.key_bits, cert.signature
            );
            if !cert.sans.is_empty() {
                let _ = writeln!(o, "     names {}", cert.sans.join(", "));
            }
            let left = if cert.days_left < 0 {
                format!("EXPIRED {} days ago", -cert.days_left)
            } else {
                format!("{} days left", cert.days_left)
            };
            let _ = writeln!(
                o,
                "     valid {} to {} ({left}), serial {}",
                cert.not_before, cert.not_after, cert.serial
            );
        }
    }

    if !r.notes.is_empty() {
        o.push_str("\nNotes\n");
        for n in &r.notes {
            let _ = writeln!(o, "  - {n}");
        }
    }

    let _ = writeln!(o, "\nGrade: {}", r.grade);
    for reason in &r.reasons {
        let _ = writeln!(o, "  {:<2}  {}", reason.cap.as_str(), reason.text);
    }
    o
}

fn suite_table(o: &mut String, suites: &[AcceptedSuite]) {
    let iana_w = suites
        .iter()
        .map(|s| s.iana.len())
        .max()
        .unwrap_or(0)
        .max(9);
    let ossl_w = suites
        .iter()
        .map(|s| s.openssl.as_deref().map_or(1, str::len))
        .max()
        .unwrap_or(0)
        .max(12);
    let kx_w = suites
        .iter()
        .map(|s| s.kx_detail.len())
        .max()
        .unwrap_or(0)
        .max(12);
    let _ = writeln!(
        o,
        "  {:>2}  {:<iana_w$}  {:<ossl_w$}  {:<6}  {:>5}  {:<kx_w$}  {:>4}  flags",
        "#", "IANA name", "OpenSSL name", "hex", "dec", "key exchange", "bits"
    );
    for (i, s) in suites.iter().enumerate() {
        let mut flags = Vec::new();
        if s.flags.forward_secrecy {
            flags.push("FS");
        }
        if s.flags.aead {
            flags.push("AEAD");
        }
        if s.flags.insecure {
            flags.push("INSECURE");
        } else if s.flags.weak {
            flags.push("WEAK");
        }
        let _ = writeln!(
            o,
            "  {:>2}  {:<iana_w$}  {:<ossl_w$}  {:<6}  {:>5}  {:<kx_w$}  {:>4}  {}",
            i + 1,
            s.iana,
            s.openssl.as_deref().unwrap_or("-"),
            s.hex,
            s.id,
            s.kx_detail,
            s.bits,
            flags.join(" ")
        );
    }
}
