//! Mail-supplied text made safe to read in a browser: every page passes
//! through [`clean_page`] after its template is rendered, so no subject,
//! address, HELO or client name, remote reply, rule detail, header preview or
//! posture peer name reaches the screen with a character that hides or
//! reorders what the operator reads.
//!
//! Why the whole page and not each value: a pass over the rendered page cannot
//! be forgotten by a new template or a new field, and our own templates hold
//! no such character (a unit test below checks each one), so replacing them
//! in the page replaces exactly those that came from the data.
//!
//! # Security
//! Bidirectional formatting characters (explicit embeddings, overrides,
//! isolates, the directional marks: [`postern_proto::is_bidi_format`]) let a
//! hostile subject show text in another order than it is stored
//! (CVE-2021-42574, "Trojan Source"); C0 and C1 controls and DEL (NUL, BEL,
//! ESC, …) are invisible in a page and hide where a value ends. Each becomes
//! U+FFFD REPLACEMENT CHARACTER, visible where it stood. The set is the one
//! the CLI replaces (`postern_trackdb` `render::clean`, which writes `?` for
//! a terminal), except tab, line feed and carriage return: HTML shows them as
//! white space (they end lines only inside `<pre>`), so they stay.
//! HTML escaping is askama's, before this pass; this pass never adds markup.
//!
//! # Standards
//! Unicode UAX #9 (bidirectional algorithm: explicit formatting characters,
//! §2); WHATWG HTML §13.2.3.5 (a NUL in text is a parse error).

/// What a page shows in place of a hidden or reordering character.
pub(crate) const REPLACEMENT: char = '\u{FFFD}';

/// Whether `c` must not reach a page as is: a control other than tab, line
/// feed and carriage return, or a bidirectional formatting character.
pub(crate) fn is_hidden(c: char) -> bool {
    (c.is_control() && !matches!(c, '\t' | '\n' | '\r')) || postern_proto::is_bidi_format(c)
}

/// `page` with every [`is_hidden`] character replaced by [`REPLACEMENT`];
/// returned as is (no copy) when it has none, which is the common case.
pub(crate) fn clean_page(page: String) -> String {
    if !page.chars().any(is_hidden) {
        return page;
    }
    page.chars()
        .map(|c| if is_hidden(c) { REPLACEMENT } else { c })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hidden_and_reordering_characters_are_replaced() {
        let hostile =
            "a\u{202E}gpj.exe \u{2066}x\u{2069} \u{7}\u{1b}[31m\0 \u{85}\u{7f}\u{200F}\u{61C}";
        let out = clean_page(hostile.to_owned());
        assert_eq!(
            out,
            "a\u{FFFD}gpj.exe \u{FFFD}x\u{FFFD} \u{FFFD}\u{FFFD}[31m\u{FFFD} \u{FFFD}\u{FFFD}\u{FFFD}\u{FFFD}"
        );
        assert!(!out.chars().any(is_hidden));
        // White space HTML shows as white space stays; other text too.
        let plain = "<pre>a\tb\r\nc</pre> é 東京 \u{FFFD}".to_owned();
        assert_eq!(clean_page(plain.clone()), plain);
    }

    /// The pass replaces only what came from the data: no template of ours
    /// holds a character it would replace.
    #[test]
    fn no_template_holds_a_hidden_character() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("templates");
        let mut n = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            assert!(
                !text.chars().any(is_hidden),
                "{} holds a control or bidi formatting character",
                path.display()
            );
            n += 1;
        }
        assert!(n >= 10, "{n} templates");
    }
}
