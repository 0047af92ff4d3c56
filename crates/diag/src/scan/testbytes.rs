//! Server-side byte builders for the unit tests of `wire` (test-only).
#![allow(clippy::unwrap_used)]

pub fn record(ty: u8, payload: &[u8]) -> Vec<u8> {
    let mut v = vec![ty, 3, 3];
    v.extend(u16::try_from(payload.len()).unwrap().to_be_bytes());
    v.extend(payload);
    v
}

pub fn handshake(ty: u8, body: &[u8]) -> Vec<u8> {
    let mut v = vec![ty];
    v.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    v.extend(body);
    v
}

/// ServerHello with a 32-byte session id; `ext` empty: no extensions block.
pub fn server_hello(version: u16, suite: u16, ext: &[u8]) -> Vec<u8> {
    let mut b = version.to_be_bytes().to_vec();
    b.extend([0x5a; 32]);
    b.push(32);
    b.extend([0x33; 32]);
    b.extend(suite.to_be_bytes());
    b.push(0);
    if !ext.is_empty() {
        b.extend(u16::try_from(ext.len()).unwrap().to_be_bytes());
        b.extend(ext);
    }
    handshake(2, &b)
}

pub fn certificate(certs: &[&[u8]]) -> Vec<u8> {
    let mut list: Vec<u8> = Vec::new();
    for c in certs {
        list.extend(&u32::try_from(c.len()).unwrap().to_be_bytes()[1..]);
        list.extend(*c);
    }
    let mut b = u32::try_from(list.len()).unwrap().to_be_bytes()[1..].to_vec();
    b.extend(list);
    handshake(11, &b)
}

/// DH ServerKeyExchange (p, g, Ys, then a dummy signature).
pub fn ske_dh(p: &[u8], g: &[u8]) -> Vec<u8> {
    let mut b = Vec::new();
    for part in [p, g, p] {
        b.extend(u16::try_from(part.len()).unwrap().to_be_bytes());
        b.extend(part);
    }
    b.extend([0x04, 0x01, 0, 2, 0xaa, 0xbb]);
    handshake(12, &b)
}

/// ECDHE ServerKeyExchange with a named curve and a 65-byte point.
pub fn ske_ecdh(group: u16) -> Vec<u8> {
    let mut b = vec![3];
    b.extend(group.to_be_bytes());
    b.push(65);
    b.extend([4; 65]);
    b.extend([0x04, 0x03, 0, 2, 0xaa, 0xbb]);
    handshake(12, &b)
}

pub fn server_hello_done() -> Vec<u8> {
    handshake(14, &[])
}

pub fn alert(description: u8) -> Vec<u8> {
    record(21, &[2, description])
}
