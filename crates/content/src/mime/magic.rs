//! The type of an attachment from its first bytes ("magic numbers"), to catch
//! a part whose declared Content-Type lies (an executable sent as image/png).
//! A small table of the types mail filters care about: executables, scripts,
//! archives, documents with macros, disk images, images.
//!
//! # Security
//! Reads untrusted bytes: fixed offsets and short searches within the prefix
//! the walk kept ([`PREFIX`] bytes).

/// Bytes of decoded content the walk keeps for detection: enough for the
/// ISO 9660 signature at 0x8001.
pub(crate) const PREFIX: usize = 0x8001 + 5;

/// The detected MIME type of content starting with `b`.
pub(crate) fn detect(b: &[u8]) -> Option<&'static str> {
    const TABLE: &[(&[u8], &str)] = &[
        (b"%PDF-", "application/pdf"),
        (b"MZ", "application/x-msdownload"),
        (b"\x7fELF", "application/x-executable"),
        (b"\xcf\xfa\xed\xfe", "application/x-mach-binary"),
        (b"\xfe\xed\xfa\xcf", "application/x-mach-binary"),
        (b"\x89PNG\r\n\x1a\n", "image/png"),
        (b"\xff\xd8\xff", "image/jpeg"),
        (b"GIF87a", "image/gif"),
        (b"GIF89a", "image/gif"),
        (b"II*\x00", "image/tiff"),
        (b"MM\x00*", "image/tiff"),
        (b"\x1f\x8b", "application/gzip"),
        (b"BZh", "application/x-bzip2"),
        (b"\xfd7zXZ\x00", "application/x-xz"),
        (b"Rar!\x1a\x07", "application/vnd.rar"),
        (b"7z\xbc\xaf\x27\x1c", "application/x-7z-compressed"),
        (b"MSCF", "application/vnd.ms-cab-compressed"),
        (b"ITSF", "application/vnd.ms-htmlhelp"),
        (
            b"\xd0\xcf\x11\xe0\xa1\xb1\x1a\xe1",
            "application/x-ole-storage",
        ),
        (
            b"L\x00\x00\x00\x01\x14\x02\x00",
            "application/x-ms-shortcut",
        ),
        (b"{\\rtf", "application/rtf"),
        (b"%!PS", "application/postscript"),
        (b"#!", "text/x-shellscript"),
        (b"OggS", "audio/ogg"),
        (b"ID3", "audio/mpeg"),
    ];
    if b.starts_with(b"PK\x03\x04") || b.starts_with(b"PK\x05\x06") || b.starts_with(b"PK\x07\x08")
    {
        return Some(zip_kind(b));
    }
    if b.len() >= 12 && b.starts_with(b"RIFF") && &b[8..12] == b"WEBP" {
        return Some("image/webp");
    }
    if let Some((_, kind)) = TABLE.iter().find(|(magic, _)| b.starts_with(magic)) {
        return Some(kind);
    }
    if b.get(257..262) == Some(b"ustar") {
        return Some("application/x-tar");
    }
    if b.get(0x8001..0x8006) == Some(b"CD001") {
        return Some("application/x-iso9660-image");
    }
    if is_html(b) {
        return Some("text/html");
    }
    None
}

/// ZIP containers: OOXML (by its part names), OpenDocument (its `mimetype`
/// entry), Java archives, else plain ZIP.
fn zip_kind(b: &[u8]) -> &'static str {
    let has = |needle: &[u8]| memchr::memmem::find(b, needle).is_some();
    if has(b"mimetypeapplication/vnd.oasis.opendocument.text") {
        "application/vnd.oasis.opendocument.text"
    } else if has(b"mimetypeapplication/vnd.oasis.opendocument.spreadsheet") {
        "application/vnd.oasis.opendocument.spreadsheet"
    } else if has(b"word/") {
        "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
    } else if has(b"xl/") {
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
    } else if has(b"ppt/") {
        "application/vnd.openxmlformats-officedocument.presentationml.presentation"
    } else if has(b"META-INF/MANIFEST.MF") {
        "application/java-archive"
    } else {
        "application/zip"
    }
}

/// Starts (after white space and a BOM) with an HTML doctype or `<html`.
fn is_html(b: &[u8]) -> bool {
    let b = b.strip_prefix(b"\xef\xbb\xbf").unwrap_or(b);
    let start = b
        .iter()
        .position(|c| !c.is_ascii_whitespace())
        .unwrap_or(b.len());
    let head = &b[start..b.len().min(start + 14)];
    let lower = head.to_ascii_lowercase();
    lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html")
}

#[cfg(test)]
mod tests {
    use super::detect;

    #[test]
    fn table() {
        assert_eq!(detect(b"%PDF-1.7"), Some("application/pdf"));
        assert_eq!(detect(b"MZ\x90\x00"), Some("application/x-msdownload"));
        assert_eq!(
            detect(b"PK\x03\x04....word/document.xml"),
            Some("application/vnd.openxmlformats-officedocument.wordprocessingml.document")
        );
        assert_eq!(detect(b"PK\x03\x04....a.txt"), Some("application/zip"));
        assert_eq!(detect(b"\x89PNG\r\n\x1a\n"), Some("image/png"));
        assert_eq!(detect(b"  <!DOCTYPE html><p>"), Some("text/html"));
        let mut iso = vec![0u8; 0x8006];
        iso[0x8001..0x8006].copy_from_slice(b"CD001");
        assert_eq!(detect(&iso), Some("application/x-iso9660-image"));
        assert_eq!(detect(b"plain text"), None);
        assert_eq!(detect(b""), None);
    }
}
