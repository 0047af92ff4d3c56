//! HTML to plain text for content rules: tags removed (block tags become line
//! breaks, inline tags nothing, so `fr<b>ee</b>` stays the word "free"),
//! comments, `<script>` and `<style>` contents dropped, character references
//! decoded. Not a renderer: what a rule needs is the words a reader sees.
//!
//! # Security
//! Reads untrusted text; one pass, output never longer than the input plus
//! one byte per tag.
//!
//! # Standards
//! HTML Living Standard §13.2.5 (tokenization, loosely), §13.5 (named
//! character references: the common ones only).

/// The visible text of `html`.
pub(crate) fn to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len() / 2);
    let mut rest = html;
    while let Some(lt) = rest.find(['<', '&']) {
        out.push_str(&rest[..lt]);
        rest = &rest[lt..];
        if rest.starts_with('&') {
            let (text, used) = reference(rest);
            out.push_str(text.as_deref().unwrap_or("&"));
            rest = &rest[used..];
            continue;
        }
        if let Some(after) = rest.strip_prefix("<!--") {
            rest = after.find("-->").map_or("", |end| &after[end + 3..]);
            continue;
        }
        let after = &rest[1..];
        let starts_tag = after
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || matches!(c, '/' | '!' | '?'));
        if !starts_tag {
            out.push('<');
            rest = after;
            continue;
        }
        let end = after.find('>').map_or(after.len(), |e| e + 1);
        let tag = &after[..end];
        let name = tag_name(tag);
        rest = &after[end..];
        if !tag.starts_with('/')
            && (name.eq_ignore_ascii_case("script") || name.eq_ignore_ascii_case("style"))
        {
            rest = skip_to_close(rest, &name);
        }
        if is_block(&name) {
            out.push('\n');
        }
    }
    out.push_str(rest);
    out
}

fn tag_name(tag: &str) -> String {
    tag.trim_start_matches('/')
        .chars()
        .take_while(char::is_ascii_alphanumeric)
        .collect()
}

/// After the closing tag of a raw-text element (`</script>`), or the end.
fn skip_to_close<'a>(rest: &'a str, name: &str) -> &'a str {
    let bytes = rest.as_bytes();
    let mut from = 0;
    while let Some(i) = rest[from..].find("</") {
        let at = from + i + 2;
        let candidate = &bytes[at..];
        if candidate.len() >= name.len()
            && candidate[..name.len()].eq_ignore_ascii_case(name.as_bytes())
        {
            return rest[at..].find('>').map_or("", |e| &rest[at + e + 1..]);
        }
        from = at;
    }
    ""
}

fn is_block(name: &str) -> bool {
    const BLOCK: &[&str] = &[
        "br",
        "p",
        "div",
        "tr",
        "li",
        "td",
        "th",
        "table",
        "ul",
        "ol",
        "h1",
        "h2",
        "h3",
        "h4",
        "h5",
        "h6",
        "hr",
        "blockquote",
        "title",
        "body",
        "head",
        "html",
        "section",
        "article",
        "header",
        "footer",
        "pre",
        "dt",
        "dd",
        "center",
    ];
    BLOCK.iter().any(|b| name.eq_ignore_ascii_case(b))
}

/// A character reference at the start of `s` (which starts with `&`): the
/// text it stands for and the bytes it used; `(None, 1)` when it is none.
fn reference(s: &str) -> (Option<String>, usize) {
    let body = &s[1..];
    // Look for the ';' in the next few bytes only: searching the whole rest
    // for each '&' would make a text of '&'s quadratic.
    let window = &body.as_bytes()[..body.len().min(12)];
    let Some(semi) = window.iter().position(|&b| b == b';').filter(|&i| i <= 10) else {
        return (None, 1);
    };
    let name = &body[..semi];
    let used = semi + 2;
    let decoded = if let Some(num) = name.strip_prefix('#') {
        let code = match num.strip_prefix(['x', 'X']) {
            Some(hex) => u32::from_str_radix(hex, 16).ok(),
            None => num.parse::<u32>().ok(),
        };
        code.map(|c| char::from_u32(c).unwrap_or(char::REPLACEMENT_CHARACTER))
    } else {
        named(name)
    };
    match decoded {
        Some(c) => (Some(c.to_string()), used),
        None => (None, 1),
    }
}

/// The Latin-1 named references, in code point order from U+00A0.
const LATIN1: [&str; 96] = [
    "nbsp", "iexcl", "cent", "pound", "curren", "yen", "brvbar", "sect", "uml", "copy", "ordf",
    "laquo", "not", "shy", "reg", "macr", "deg", "plusmn", "sup2", "sup3", "acute", "micro",
    "para", "middot", "cedil", "sup1", "ordm", "raquo", "frac14", "frac12", "frac34", "iquest",
    "Agrave", "Aacute", "Acirc", "Atilde", "Auml", "Aring", "AElig", "Ccedil", "Egrave", "Eacute",
    "Ecirc", "Euml", "Igrave", "Iacute", "Icirc", "Iuml", "ETH", "Ntilde", "Ograve", "Oacute",
    "Ocirc", "Otilde", "Ouml", "times", "Oslash", "Ugrave", "Uacute", "Ucirc", "Uuml", "Yacute",
    "THORN", "szlig", "agrave", "aacute", "acirc", "atilde", "auml", "aring", "aelig", "ccedil",
    "egrave", "eacute", "ecirc", "euml", "igrave", "iacute", "icirc", "iuml", "eth", "ntilde",
    "ograve", "oacute", "ocirc", "otilde", "ouml", "divide", "oslash", "ugrave", "uacute", "ucirc",
    "uuml", "yacute", "thorn", "yuml",
];

/// Other named references common in mail: markup, typography, invisible
/// joiners (removed later with the other invisible characters).
const OTHER: &[(&str, char)] = &[
    ("amp", '&'),
    ("lt", '<'),
    ("gt", '>'),
    ("quot", '"'),
    ("apos", '\''),
    ("euro", '€'),
    ("ndash", '–'),
    ("mdash", '—'),
    ("lsquo", '‘'),
    ("rsquo", '’'),
    ("sbquo", '‚'),
    ("ldquo", '“'),
    ("rdquo", '”'),
    ("bdquo", '„'),
    ("hellip", '…'),
    ("bull", '•'),
    ("trade", '™'),
    ("dagger", '†'),
    ("Dagger", '‡'),
    ("permil", '‰'),
    ("lsaquo", '‹'),
    ("rsaquo", '›'),
    ("OElig", 'Œ'),
    ("oelig", 'œ'),
    ("Scaron", 'Š'),
    ("scaron", 'š'),
    ("Yuml", 'Ÿ'),
    ("fnof", 'ƒ'),
    ("circ", 'ˆ'),
    ("tilde", '˜'),
    ("ensp", ' '),
    ("emsp", ' '),
    ("thinsp", ' '),
    ("zwnj", '\u{200c}'),
    ("zwj", '\u{200d}'),
];

/// The character a named reference stands for (names are case-sensitive).
/// `&nbsp;` is read as a plain space so words around it stay apart.
fn named(name: &str) -> Option<char> {
    if name == "nbsp" {
        return Some(' ');
    }
    if let Some(i) = LATIN1.iter().position(|n| *n == name) {
        return char::from_u32(0xA0 + u32::try_from(i).ok()?);
    }
    OTHER.iter().find(|(n, _)| *n == name).map(|(_, c)| *c)
}

#[cfg(test)]
mod tests {
    use super::to_text;

    #[test]
    fn strips_tags_keeps_words() {
        assert_eq!(
            to_text("<p>Get fr<b>ee</b> money</p>"),
            "\nGet free money\n"
        );
        assert_eq!(to_text("a<br>b"), "a\nb");
        assert_eq!(to_text("x <!-- hidden --> y"), "x  y");
        assert_eq!(
            to_text("<style>p{}</style><script>var a='<b>';</SCRIPT >ok"),
            "ok"
        );
        assert_eq!(
            to_text("1 < 2 &amp; 3 &gt; 2 &#65;&#x42; &bogus; &"),
            "1 < 2 & 3 > 2 AB &bogus; &"
        );
        assert_eq!(to_text("<a href=\"x\">link"), "link");
        assert_eq!(to_text("unterminated <b"), "unterminated ");
        assert_eq!(to_text("<script>never closed"), "");
        assert_eq!(
            to_text("&#x1F600;&#9999999999;&#xZZ;"),
            "😀&#9999999999;&#xZZ;"
        );
    }

    /// Every construct is linear: 200 000 of each costs one pass, not a
    /// pass per occurrence (this would take minutes if quadratic).
    #[test]
    fn no_quadratic_input() {
        for unit in ["&", "&a", "<a", "<!--", "<script>", "</", "<script></scrip"] {
            let text = unit.repeat(200_000);
            let out = to_text(&text);
            assert!(out.len() <= text.len(), "{unit}");
        }
    }
}
