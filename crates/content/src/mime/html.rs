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
        match name {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            "apos" => Some('\''),
            "nbsp" => Some(' '),
            "shy" => Some('\u{ad}'),
            "euro" => Some('€'),
            "copy" => Some('©'),
            "reg" => Some('®'),
            _ => None,
        }
    };
    match decoded {
        Some(c) => (Some(c.to_string()), used),
        None => (None, 1),
    }
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
