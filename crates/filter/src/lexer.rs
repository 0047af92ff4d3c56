//! The tokenizer of the filter language: words, strings with escapes, regex literals with
//! flags, numbers with size units, and punctuation, each with its line and column.
//!
//! It never fails as a whole: a bad character or an unterminated literal becomes an
//! error entry and the tokenizer carries on, so one run reports every lexical error of a
//! file.
//!
//! # Security
//! Untrusted input in the sense that a rule file may be written by a less trusted admin
//! or be corrupted: the caller bounds the source size before tokenizing; every literal is
//! bounded by the source; no recursion here.

use crate::error::ParseError;

/// One token kind.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Tok {
    /// A word: keyword, field name or bare value (`rule`, `detected-type`, `fail`).
    Word(String),
    /// A double-quoted string, escapes decoded.
    Str(String),
    /// `/pattern/flags`; the pattern with `\/` turned into `/`, other escapes kept for the
    /// regex engine.
    Regex { pattern: String, flags: String },
    /// A number, size units applied (`10M` = 10 × 1024 × 1024).
    Num(f64),
    /// `{ } ( ) ; ,`
    Punct(char),
    /// `= == != < <= > >=` (normalised: `==` → `=`).
    Cmp(&'static str),
    /// A literal that failed to tokenize (its error is already reported; the parser
    /// reports nothing more for the rule it is in).
    Invalid,
    /// End of input.
    Eof,
}

impl Tok {
    /// How the token is named in "expected …, found …" messages.
    pub(crate) fn describe(&self) -> String {
        match self {
            Tok::Word(w) => format!("`{w}`"),
            Tok::Str(s) => format!("string {s:?}"),
            Tok::Regex { pattern, flags } => format!("regex /{pattern}/{flags}"),
            Tok::Num(n) => format!("number {n}"),
            Tok::Punct(c) => format!("`{c}`"),
            Tok::Cmp(c) => format!("`{c}`"),
            Tok::Invalid => "an invalid token".to_owned(),
            Tok::Eof => "end of file".to_owned(),
        }
    }
}

/// A token and where it starts (1-based line and column, columns in characters).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Token {
    pub tok: Tok,
    pub line: u32,
    pub column: u32,
    /// Byte offsets of the token in the source (for quoting a condition back).
    pub start: usize,
    pub end: usize,
}

/// Longest string or regex literal, in bytes: a rule needs no more, and it bounds what
/// a regex compile or a header value can be handed.
pub(crate) const MAX_LITERAL: usize = 64 * 1024;

struct Lexer<'s> {
    chars: std::iter::Peekable<std::str::Chars<'s>>,
    line: u32,
    column: u32,
    pos: usize,
    origin: &'s str,
}

impl Lexer<'_> {
    fn bump(&mut self) -> Option<char> {
        let c = self.chars.next()?;
        self.pos += c.len_utf8();
        if c == '\n' {
            self.line += 1;
            self.column = 1;
        } else {
            self.column += 1;
        }
        Some(c)
    }

    fn peek(&mut self) -> Option<char> {
        self.chars.peek().copied()
    }

    fn error(&self, line: u32, column: u32, message: impl Into<String>) -> ParseError {
        ParseError::new(self.origin, line, column, message)
    }
}

/// Splits `source` into tokens (ending with [`Tok::Eof`]) and the lexical errors found.
pub(crate) fn tokenize(source: &str, origin: &str) -> (Vec<Token>, Vec<ParseError>) {
    let mut lx = Lexer {
        chars: source.chars().peekable(),
        line: 1,
        column: 1,
        pos: 0,
        origin,
    };
    let mut tokens = Vec::new();
    let mut errors = Vec::new();
    while let Some(c) = lx.peek() {
        let (line, column, start) = (lx.line, lx.column, lx.pos);
        if c.is_whitespace() {
            lx.bump();
            continue;
        }
        if c == '#' {
            while let Some(c) = lx.peek() {
                if c == '\n' {
                    break;
                }
                lx.bump();
            }
            continue;
        }
        let tok = match c {
            '"' => {
                lx.bump();
                match string(&mut lx, line, column) {
                    Ok(s) => Tok::Str(s),
                    Err(e) => {
                        errors.push(e);
                        Tok::Invalid
                    }
                }
            }
            '/' => {
                lx.bump();
                match regex(&mut lx, line, column) {
                    Ok((pattern, flags)) => Tok::Regex { pattern, flags },
                    Err(e) => {
                        errors.push(e);
                        Tok::Invalid
                    }
                }
            }
            '{' | '}' | '(' | ')' | ';' | ',' => {
                lx.bump();
                Tok::Punct(c)
            }
            '=' | '!' | '<' | '>' => {
                lx.bump();
                let eq = lx.peek() == Some('=');
                if eq {
                    lx.bump();
                }
                match (c, eq) {
                    ('=', _) => Tok::Cmp("="),
                    ('!', true) => Tok::Cmp("!="),
                    ('<', false) => Tok::Cmp("<"),
                    ('<', true) => Tok::Cmp("<="),
                    ('>', false) => Tok::Cmp(">"),
                    ('>', true) => Tok::Cmp(">="),
                    _ => {
                        errors.push(lx.error(
                            line,
                            column,
                            "`!` must be followed by `=` (use `not` to negate a condition)",
                        ));
                        continue;
                    }
                }
            }
            c if c.is_ascii_digit() || c == '-' || c == '.' => {
                match number(&mut lx, line, column) {
                    Ok(n) => Tok::Num(n),
                    Err(e) => {
                        errors.push(e);
                        Tok::Invalid
                    }
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' => {
                let mut w = String::new();
                while let Some(c) = lx.peek() {
                    if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                        w.push(c);
                        lx.bump();
                    } else {
                        break;
                    }
                }
                Tok::Word(w)
            }
            other => {
                lx.bump();
                errors.push(lx.error(
                    line,
                    column,
                    format!("unexpected character {other:?}: expected a word, a \"string\", a /regex/, a number or one of {{ }} ( ) ; ,"),
                ));
                continue;
            }
        };
        tokens.push(Token {
            tok,
            line,
            column,
            start,
            end: lx.pos,
        });
    }
    tokens.push(Token {
        tok: Tok::Eof,
        line: lx.line,
        column: lx.column,
        start: lx.pos,
        end: lx.pos,
    });
    (tokens, errors)
}

fn string(lx: &mut Lexer<'_>, line: u32, column: u32) -> Result<String, ParseError> {
    let mut out = String::new();
    loop {
        let (el, ec) = (lx.line, lx.column);
        match lx.bump() {
            None | Some('\n') => {
                return Err(lx.error(
                    line,
                    column,
                    "unterminated string: expected a closing `\"` on the same line",
                ));
            }
            Some('"') => break,
            Some('\\') => match lx.bump() {
                Some('"') => out.push('"'),
                Some('\\') => out.push('\\'),
                Some('n') => out.push('\n'),
                Some('r') => out.push('\r'),
                Some('t') => out.push('\t'),
                Some('u') => out.push(unicode_escape(lx, el, ec)?),
                other => {
                    // Skip to the closing quote so the rest of the line is not read as code.
                    skip_rest_of_string(lx);
                    return Err(lx.error(
                        el,
                        ec,
                        format!(
                            "unknown escape `\\{}` in string: allowed are \\\" \\\\ \\n \\r \\t \\u{{HEX}}",
                            other.map_or(String::new(), String::from)
                        ),
                    ));
                }
            },
            Some(c) => out.push(c),
        }
        if out.len() > MAX_LITERAL {
            skip_rest_of_string(lx);
            return Err(lx.error(
                line,
                column,
                format!("string longer than {MAX_LITERAL} bytes"),
            ));
        }
    }
    Ok(out)
}

fn skip_rest_of_string(lx: &mut Lexer<'_>) {
    while let Some(c) = lx.peek() {
        if c == '\n' {
            return;
        }
        lx.bump();
        if c == '\\' {
            if lx.peek() != Some('\n') {
                lx.bump();
            }
        } else if c == '"' {
            return;
        }
    }
}

fn unicode_escape(lx: &mut Lexer<'_>, line: u32, column: u32) -> Result<char, ParseError> {
    let bad = |lx: &Lexer<'_>| {
        lx.error(
            line,
            column,
            "bad unicode escape: expected \\u{HEX} with 1 to 6 hex digits naming a character",
        )
    };
    if lx.peek() != Some('{') {
        return Err(bad(lx));
    }
    lx.bump();
    let mut hex = String::new();
    while let Some(c) = lx.peek() {
        if c == '}' || hex.len() > 6 || !c.is_ascii_hexdigit() {
            break;
        }
        hex.push(c);
        lx.bump();
    }
    if lx.peek() != Some('}') || hex.is_empty() || hex.len() > 6 {
        return Err(bad(lx));
    }
    lx.bump();
    u32::from_str_radix(&hex, 16)
        .ok()
        .and_then(char::from_u32)
        .ok_or_else(|| bad(lx))
}

fn regex(lx: &mut Lexer<'_>, line: u32, column: u32) -> Result<(String, String), ParseError> {
    let mut pattern = String::new();
    loop {
        match lx.bump() {
            None | Some('\n') => {
                return Err(lx.error(line, column, "unterminated regex: expected a closing `/` on the same line (write `\\/` for a slash inside)"));
            }
            Some('/') => break,
            Some('\\') => match lx.peek() {
                Some('/') => {
                    lx.bump();
                    pattern.push('/');
                }
                Some('\n') | None => pattern.push('\\'),
                Some(c) => {
                    lx.bump();
                    pattern.push('\\');
                    pattern.push(c);
                }
            },
            Some(c) => pattern.push(c),
        }
        if pattern.len() > MAX_LITERAL {
            return Err(lx.error(
                line,
                column,
                format!("regex longer than {MAX_LITERAL} bytes"),
            ));
        }
    }
    let mut flags = String::new();
    while let Some(c) = lx.peek() {
        if c.is_ascii_alphabetic() {
            flags.push(c);
            lx.bump();
        } else {
            break;
        }
    }
    Ok((pattern, flags))
}

fn number(lx: &mut Lexer<'_>, line: u32, column: u32) -> Result<f64, ParseError> {
    let mut text = String::new();
    while let Some(c) = lx.peek() {
        if c.is_ascii_alphanumeric() || c == '.' || (c == '-' && text.is_empty()) {
            text.push(c);
            lx.bump();
        } else {
            break;
        }
    }
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (digits, unit) = text.split_at(split);
    let multiplier: f64 = match unit.to_ascii_lowercase().as_str() {
        "" => 1.0,
        "k" | "kib" | "kb" => 1024.0,
        "m" | "mib" | "mb" => 1024.0 * 1024.0,
        "g" | "gib" | "gb" => 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(lx.error(
                line,
                column,
                format!("bad number `{text}`: expected digits with an optional size unit K, M or G (1024-based)"),
            ));
        }
    };
    let valid = !digits.is_empty()
        && digits
            .trim_start_matches('-')
            .chars()
            .all(|c| c.is_ascii_digit() || c == '.')
        && digits
            .trim_start_matches('-')
            .starts_with(|c: char| c.is_ascii_digit())
        && digits.matches('.').count() <= 1;
    match digits.parse::<f64>() {
        Ok(n) if valid && n.is_finite() => Ok(n * multiplier),
        _ => Err(lx.error(
            line,
            column,
            format!("bad number `{text}`: expected digits with an optional size unit K, M or G (1024-based)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn toks(s: &str) -> Vec<Tok> {
        let (t, e) = tokenize(s, "t");
        assert!(e.is_empty(), "{e:?}");
        t.into_iter().map(|t| t.tok).collect()
    }

    #[test]
    fn literals() {
        assert_eq!(
            toks(r#"rule "a\"b\u{41}" /\.exe\/x$/i 10M -1.5 >= != ("#),
            vec![
                Tok::Word("rule".into()),
                Tok::Str("a\"bA".into()),
                Tok::Regex {
                    pattern: r"\.exe/x$".into(),
                    flags: "i".into()
                },
                Tok::Num(10.0 * 1024.0 * 1024.0),
                Tok::Num(-1.5),
                Tok::Cmp(">="),
                Tok::Cmp("!="),
                Tok::Punct('('),
                Tok::Eof
            ]
        );
    }

    #[test]
    fn errors_carry_positions_and_do_not_stop() {
        let (_, e) = tokenize("a \"open\n  @ 12X\n", "f.rules");
        let pos: Vec<_> = e.iter().map(|e| (e.line, e.column)).collect();
        assert_eq!(pos, vec![(1, 3), (2, 3), (2, 5)], "{e:?}");
    }
}
