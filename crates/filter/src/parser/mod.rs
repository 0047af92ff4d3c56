//! The parser of the filter language: tokens → rules, with every value validated and
//! every regex compiled here, once.
//!
//! Errors come in two kinds. A *syntax* error (an unexpected token) abandons the rule it
//! is in; the parser skips to the next `rule` keyword and carries on. A *value* error (a
//! bad reply code, header name, address, regex) is recorded and parsing continues in the
//! same rule. Either way every error of the file is reported (up to [`MAX_ERRORS`]).
//!
//! # Security
//! A rule file is trusted configuration, but it is bounded anyway so a mistake (or a
//! fuzzer) cannot exhaust the process: [`MAX_SOURCE`] bytes, [`MAX_RULES`] rules,
//! [`MAX_DEPTH`] levels of `not`/parentheses (the recursion bound), regexes compiled
//! with size limits ([`REGEX_SIZE_LIMIT`]). Values that end up on the wire are checked
//! so a rule cannot inject a line into a reply or a header (RFC 5321 §4.2, RFC 5322
//! §2.2).
//!
//! # Standards
//! RFC 5321 §4.2.1 (reply codes), RFC 3463 §3 (enhanced status codes), RFC 5322 §3.6.8
//! (field names: printable US-ASCII except colon), RFC 5321 §4.1.2 (addresses),
//! RFC 8601 §2.7 (authentication result words).

use std::sync::Arc;

use regex::{Regex, RegexBuilder};

use crate::ast::{CmpOp, Expr, Field, Flag, NameKind, NameRef, Op, Rule, Test};
use crate::error::{MAX_ERRORS, ParseError};
use crate::lexer::{Tok, Token, tokenize};

mod actions;
mod values;

pub(crate) use values::parse_tls_version;
use values::{bad_field_name, bad_identifier, is_field_name, is_identifier};

/// Largest rule file, in bytes.
pub const MAX_SOURCE: usize = 4 * 1024 * 1024;
/// Most rules in one file.
pub const MAX_RULES: usize = 10_000;
/// Deepest nesting of `not` and parentheses in one condition.
pub const MAX_DEPTH: usize = 64;
/// Compiled size limit of one regex (`regex::RegexBuilder::size_limit`), bytes.
pub const REGEX_SIZE_LIMIT: usize = 1024 * 1024;
/// Lazy-DFA cache limit of one regex, bytes.
const REGEX_DFA_LIMIT: usize = 2 * 1024 * 1024;
/// Longest header field value a rule may add (RFC 5322 §2.1.1: 998 octets a line, less
/// the name).
const MAX_HEADER_VALUE: usize = 900;
/// Longest reply text (RFC 5321 §4.5.3.1.5: a reply line is at most 512 octets).
const MAX_REPLY_TEXT: usize = 400;

/// RFC 8601 §2.7 result words accepted after `spf is`, `dkim is`, `dmarc is`.
const AUTH_RESULTS: &[&str] = &[
    "pass",
    "fail",
    "softfail",
    "neutral",
    "none",
    "temperror",
    "permerror",
    "policy",
];

/// The output of a successful parse.
#[derive(Debug)]
pub(crate) struct Parsed {
    pub rules: Vec<Rule>,
    pub dictionaries: Vec<String>,
    pub names: Vec<NameRef>,
}

type PResult<T> = Result<T, ParseError>;

/// What a field's values are, which decides the tests allowed on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Free text (subject, body, header values, attachment text): `in dictionary`
    /// searches it for entries; `dictionary … score` allowed.
    Text,
    /// Short values (addresses, names, verdicts): `in dictionary` means equal to an entry.
    Value,
    Number,
    Version,
    Flag,
}

fn kind(field: &Field) -> Kind {
    match field {
        Field::Header(_) | Field::Subject | Field::Body | Field::AttachmentText => Kind::Text,
        Field::Size | Field::AttachmentSize | Field::AttachmentCount | Field::SpamScore => {
            Kind::Number
        }
        Field::TlsVersion => Kind::Version,
        Field::Flag(_) => Kind::Flag,
        _ => Kind::Value,
    }
}

struct Parser<'s> {
    toks: Vec<Token>,
    pos: usize,
    src: &'s str,
    origin: &'s str,
    /// The origin shared by this file's rules.
    origin_arc: Arc<str>,
    /// Value errors: recorded, parsing goes on.
    errors: Vec<ParseError>,
    dictionaries: Vec<String>,
    names: Vec<NameRef>,
    depth: usize,
}

/// Parses rule files as one rule set, in order: `(source, origin)` each. Dictionaries and
/// rule names are shared (a name used in two files is an error).
pub(crate) fn parse(files: &[(&str, &str)]) -> Result<Parsed, Vec<ParseError>> {
    let mut parsed = Parsed {
        rules: Vec::new(),
        dictionaries: Vec::new(),
        names: Vec::new(),
    };
    let mut errors = Vec::new();
    for (source, origin) in files {
        let mut file_errors = parse_file(source, origin, &mut parsed);
        file_errors.sort_by_key(|e| (e.line, e.column));
        file_errors.dedup();
        errors.append(&mut file_errors);
        if errors.len() > MAX_ERRORS {
            break;
        }
    }
    if errors.is_empty() {
        return Ok(parsed);
    }
    if errors.len() > MAX_ERRORS {
        errors.truncate(MAX_ERRORS);
        let last = &errors[MAX_ERRORS - 1];
        let (origin, line, column) = (last.origin.clone(), last.line, last.column);
        errors.push(ParseError::new(
            &origin,
            line,
            column,
            format!("more than {MAX_ERRORS} errors; the rest are not reported"),
        ));
    }
    Err(errors)
}

/// Parses one file into `into`; returns its errors.
fn parse_file(source: &str, origin: &str, into: &mut Parsed) -> Vec<ParseError> {
    if source.len() > MAX_SOURCE {
        return vec![ParseError::new(
            origin,
            1,
            1,
            format!(
                "rule file is {} bytes; at most {MAX_SOURCE} bytes are allowed (split it into several files)",
                source.len()
            ),
        )];
    }
    let (toks, lex_errors) = tokenize(source, origin);
    let mut p = Parser {
        toks,
        pos: 0,
        src: source,
        origin,
        origin_arc: Arc::from(origin),
        errors: Vec::new(),
        dictionaries: std::mem::take(&mut into.dictionaries),
        names: std::mem::take(&mut into.names),
        depth: 0,
    };
    let mut syntax_errors = Vec::new();
    while p.peek().tok != Tok::Eof {
        if into.rules.len() >= MAX_RULES {
            let t = p.peek();
            syntax_errors.push(ParseError::new(
                origin,
                t.line,
                t.column,
                format!("more than {MAX_RULES} rules in one rule set"),
            ));
            break;
        }
        match p.rule() {
            Ok(rule) => {
                if let Some(first) = into.rules.iter().find(|r| r.name == rule.name) {
                    let at = if *first.origin == *origin {
                        format!("line {}", first.line)
                    } else {
                        format!("{}:{}", first.origin, first.line)
                    };
                    let msg = format!(
                        "rule name {:?} is used twice (first at {at}); rule names must be unique",
                        rule.name
                    );
                    p.errors.push(ParseError::new(origin, rule.line, 1, msg));
                }
                into.rules.push(rule);
            }
            Err(e) => {
                if !e.message.is_empty() {
                    syntax_errors.push(e);
                }
                p.recover();
            }
        }
        if lex_errors.len() + syntax_errors.len() + p.errors.len() > MAX_ERRORS {
            break;
        }
    }
    into.dictionaries = p.dictionaries;
    into.names = p.names;
    let mut errors = lex_errors;
    errors.append(&mut syntax_errors);
    errors.append(&mut p.errors);
    errors
}

impl Parser<'_> {
    fn peek(&self) -> &Token {
        // Invariant: the token list ends with Eof and `pos` never moves past it.
        &self.toks[self.pos.min(self.toks.len() - 1)]
    }

    fn advance(&mut self) -> Token {
        let t = self.peek().clone();
        if t.tok != Tok::Eof {
            self.pos += 1;
        }
        t
    }

    /// Undoes the `advance` that returned `t` (which did not move at end of file).
    fn unadvance(&mut self, t: &Token) {
        if t.tok != Tok::Eof {
            self.pos -= 1;
        }
    }

    fn is_word(&self, w: &str) -> bool {
        matches!(&self.peek().tok, Tok::Word(x) if x.eq_ignore_ascii_case(w))
    }

    fn eat_word(&mut self, w: &str) -> bool {
        let yes = self.is_word(w);
        if yes {
            self.advance();
        }
        yes
    }

    fn eat_punct(&mut self, c: char) -> bool {
        let yes = self.peek().tok == Tok::Punct(c);
        if yes {
            self.advance();
        }
        yes
    }

    /// "expected …, found …" at the current token. At an invalid token (its lexical
    /// error is already reported) the message is empty and the error is not reported.
    fn expected(&self, what: &str) -> ParseError {
        let t = self.peek();
        if t.tok == Tok::Invalid {
            return ParseError::new(self.origin, t.line, t.column, String::new());
        }
        ParseError::new(
            self.origin,
            t.line,
            t.column,
            format!("expected {what}, found {}", t.tok.describe()),
        )
    }

    fn expect_word(&mut self, w: &str, what: &str) -> PResult<()> {
        if self.eat_word(w) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expect_punct(&mut self, c: char, what: &str) -> PResult<()> {
        if self.eat_punct(c) {
            Ok(())
        } else {
            Err(self.expected(what))
        }
    }

    fn expect_str(&mut self, what: &str) -> PResult<(String, Token)> {
        if let Tok::Str(s) = &self.peek().tok {
            let s = s.clone();
            Ok((s, self.advance()))
        } else {
            Err(self.expected(what))
        }
    }

    fn name_ref(&mut self, kind: NameKind, name: &str, at: &Token) {
        self.names.push(NameRef {
            kind,
            name: name.to_owned(),
            origin: self.origin.to_owned(),
            line: at.line,
            column: at.column,
        });
    }

    fn value_error(&mut self, at: &Token, message: impl Into<String>) {
        self.errors
            .push(ParseError::new(self.origin, at.line, at.column, message));
    }

    /// After a syntax error: skip to the next `rule` keyword (it cannot appear inside a
    /// rule except in a string, which is one token).
    fn recover(&mut self) {
        self.advance();
        while self.peek().tok != Tok::Eof && !self.is_word("rule") {
            self.advance();
        }
    }

    fn rule(&mut self) -> PResult<Rule> {
        let start = self.peek().clone();
        self.expect_word("rule", "`rule \"name\" { if … then … }`")?;
        let (name, name_tok) = self.expect_str("the rule's name in double quotes")?;
        if name.is_empty() || name.chars().count() > 200 || name.chars().any(char::is_control) {
            self.value_error(
                &name_tok,
                "a rule name must be 1 to 200 characters without control characters",
            );
        }
        self.expect_punct('{', "`{` after the rule name")?;
        self.expect_word("if", "`if` and a condition")?;
        self.depth = 0;
        let cond = self.or_expr()?;
        self.expect_word("then", "`and`, `or`, `)` or `then` followed by the actions")?;
        let actions = self.actions()?;
        self.expect_punct('}', "`;` and another action, or `}` closing the rule")?;
        Ok(Rule {
            name,
            origin: Arc::clone(&self.origin_arc),
            line: start.line,
            cond,
            actions,
        })
    }

    // ---- conditions -------------------------------------------------------------------

    fn or_expr(&mut self) -> PResult<Expr> {
        let mut v = vec![self.and_expr()?];
        while self.eat_word("or") {
            v.push(self.and_expr()?);
        }
        Ok(if v.len() == 1 {
            v.swap_remove(0)
        } else {
            Expr::Or(v)
        })
    }

    fn and_expr(&mut self) -> PResult<Expr> {
        let mut v = vec![self.unary()?];
        while self.eat_word("and") {
            v.push(self.unary()?);
        }
        Ok(if v.len() == 1 {
            v.swap_remove(0)
        } else {
            Expr::And(v)
        })
    }

    fn unary(&mut self) -> PResult<Expr> {
        if self.depth >= MAX_DEPTH {
            let t = self.peek().clone();
            return Err(ParseError::new(
                self.origin,
                t.line,
                t.column,
                format!("condition nested deeper than {MAX_DEPTH} levels of `not` and parentheses"),
            ));
        }
        self.depth += 1;
        let e = if self.eat_word("not") {
            self.unary().map(|e| Expr::Not(Box::new(e)))
        } else if self.eat_punct('(') {
            self.or_expr().and_then(|e| {
                self.expect_punct(')', "`and`, `or` or `)`")?;
                Ok(e)
            })
        } else if self.eat_word("true") {
            Ok(Expr::True)
        } else {
            self.test().map(|t| Expr::Test(Box::new(t)))
        };
        self.depth -= 1;
        e
    }

    fn field(&mut self) -> PResult<Field> {
        const FIELDS: &str = "a condition: sender, recipient, header \"Name\", subject, body, attachment …, size, sender-group, policy, listener, authenticated, auth-user, helo, client-ip, spf, dkim, dmarc, tls …, spam score|action, virus infected|name, true, not or `(`";
        let w = match &self.peek().tok {
            Tok::Word(w) => w.to_ascii_lowercase(),
            _ => return Err(self.expected(FIELDS)),
        };
        self.advance();
        Ok(match w.as_str() {
            "sender" if self.eat_word("domain") => Field::SenderDomain,
            "sender" => Field::Sender,
            "recipient" if self.eat_word("domain") => Field::RecipientDomain,
            "recipient" => Field::Recipient,
            "header" => {
                let (name, tok) = self.expect_str("the header field name in double quotes")?;
                if !is_field_name(&name) {
                    self.value_error(&tok, bad_field_name(&name));
                }
                Field::Header(name.to_ascii_lowercase())
            }
            "subject" => Field::Subject,
            "body" => Field::Body,
            "attachment" => {
                let sub = match &self.peek().tok {
                    Tok::Word(w) => w.to_ascii_lowercase(),
                    _ => String::new(),
                };
                let f = match sub.as_str() {
                    "text" => Field::AttachmentText,
                    "filename" | "name" => Field::AttachmentFilename,
                    "declared-type" | "type" => Field::AttachmentDeclaredType,
                    "detected-type" => Field::AttachmentDetectedType,
                    "size" => Field::AttachmentSize,
                    "count" => Field::AttachmentCount,
                    _ => {
                        return Err(self.expected(
                            "text, filename, declared-type, detected-type, size or count after `attachment`",
                        ));
                    }
                };
                self.advance();
                f
            }
            "size" => Field::Size,
            "message" => {
                self.expect_word("size", "`size` after `message`")?;
                Field::Size
            }
            "sender-group" => Field::SenderGroup,
            "policy" => Field::Policy,
            "listener" => Field::Listener,
            "auth-user" => Field::AuthUser,
            "authenticated" if self.eat_word("user") => Field::AuthUser,
            "authenticated" => Field::Flag(Flag::Authenticated),
            "helo" => Field::Helo,
            "client-ip" => Field::ClientIp,
            "spf" => Field::Spf,
            "dkim" => Field::Dkim,
            "dmarc" => Field::Dmarc,
            "tls" => {
                if self.eat_word("version") {
                    Field::TlsVersion
                } else if self.eat_word("cipher") {
                    Field::TlsCipher
                } else if self.eat_word("client-certificate") {
                    self.expect_word("verified", "`verified` after `tls client-certificate`")?;
                    Field::Flag(Flag::TlsClientCertVerified)
                } else {
                    Field::Flag(Flag::Tls)
                }
            }
            "spam" => {
                if self.eat_word("score") {
                    Field::SpamScore
                } else if self.eat_word("action") {
                    Field::SpamAction
                } else {
                    return Err(self.expected("`score` or `action` after `spam`"));
                }
            }
            "virus" => {
                if self.eat_word("infected") {
                    Field::Flag(Flag::VirusInfected)
                } else if self.eat_word("name") {
                    Field::VirusName
                } else {
                    return Err(self.expected("`infected` or `name` after `virus`"));
                }
            }
            _ => {
                self.pos -= 1;
                return Err(self.expected(FIELDS));
            }
        })
    }

    fn test(&mut self) -> PResult<Test> {
        let first = self.pos;
        let field = self.field()?;
        let mid = self.pos;
        let kind = kind(&field);
        let op = if kind == Kind::Flag {
            Op::Flag
        } else {
            self.op(&field, kind)?
        };
        Ok(Test {
            field,
            op,
            text: self.quote(first, self.pos),
            field_text: self.quote(first, mid),
            op_text: self.quote(mid, self.pos),
        })
    }

    fn op(&mut self, field: &Field, kind: Kind) -> PResult<Op> {
        let expected = match kind {
            Kind::Number => "a comparison (`>`, `>=`, `<`, `<=`, `=`, `!=`) and a number",
            Kind::Version => "a comparison (`>=`, `=`, …) or `is` and a version such as \"1.2\"",
            Kind::Text => {
                "`exists`, `is`, `contains`, `matches`, `in dictionary \"name\"` or `dictionary \"name\" score >= N`"
            }
            _ => "`exists`, `is`, `contains`, `matches` or `in dictionary \"name\"`",
        };
        let t = self.peek().clone();
        match (&t.tok, kind) {
            (Tok::Cmp(c), Kind::Number) => {
                self.advance();
                let op = CmpOp::from_token(c).ok_or_else(|| self.expected(expected))?;
                match self.peek().tok {
                    Tok::Num(n) => {
                        self.advance();
                        Ok(Op::Compare(op, n))
                    }
                    _ => Err(self.expected("a number (size units K, M, G allowed)")),
                }
            }
            (Tok::Cmp(c), Kind::Version) => {
                self.advance();
                let op = CmpOp::from_token(c).ok_or_else(|| self.expected(expected))?;
                Ok(Op::Version(op, self.version()?))
            }
            (Tok::Word(w), Kind::Number) if w.eq_ignore_ascii_case("is") => {
                self.advance();
                match self.peek().tok {
                    Tok::Num(n) => {
                        self.advance();
                        Ok(Op::Compare(CmpOp::Eq, n))
                    }
                    _ => Err(self.expected("a number")),
                }
            }
            (Tok::Word(w), Kind::Version) if w.eq_ignore_ascii_case("is") => {
                self.advance();
                Ok(Op::Version(CmpOp::Eq, self.version()?))
            }
            (Tok::Word(w), Kind::Text | Kind::Value) => match w.to_ascii_lowercase().as_str() {
                "exists" => {
                    self.advance();
                    Ok(Op::Exists)
                }
                "is" => {
                    self.advance();
                    let values = self.values()?;
                    if matches!(field, Field::Spf | Field::Dkim | Field::Dmarc) {
                        for (v, tok) in &values {
                            if !AUTH_RESULTS.contains(&v.as_str()) {
                                self.value_error(
                                    tok,
                                    format!(
                                        "{v:?} is not an authentication result: allowed are {} (RFC 8601 §2.7)",
                                        AUTH_RESULTS.join(", ")
                                    ),
                                );
                            }
                        }
                    }
                    Ok(Op::Is(values.into_iter().map(|(v, _)| v).collect()))
                }
                "contains" => {
                    self.advance();
                    let phrases = self.strings()?;
                    Ok(Op::Contains(self.contains_regexes(&phrases, &t)))
                }
                "matches" => {
                    self.advance();
                    let t = self.advance();
                    match &t.tok {
                        Tok::Str(glob) => Ok(Op::Matches(self.glob(glob, &t))),
                        Tok::Regex { pattern, flags } => {
                            Ok(Op::Matches(self.regex(pattern, flags, &t)))
                        }
                        _ => {
                            self.unadvance(&t);
                            Err(self
                                .expected("a \"glob*pattern\" or a /regex/flags after `matches`"))
                        }
                    }
                }
                "in" => {
                    self.advance();
                    self.expect_word("dictionary", "`dictionary \"name\"` after `in`")?;
                    Ok(Op::InDictionary(self.dictionary()?))
                }
                "dictionary" if kind == Kind::Text => {
                    self.advance();
                    let d = self.dictionary()?;
                    self.expect_word("score", "`score` after the dictionary name")?;
                    let op = match self.peek().tok {
                        Tok::Cmp(c) => CmpOp::from_token(c),
                        _ => None,
                    }
                    .ok_or_else(|| self.expected("a comparison such as `>=`"))?;
                    self.advance();
                    match self.peek().tok {
                        Tok::Num(n) => {
                            self.advance();
                            Ok(Op::DictionaryScore(d, op, n))
                        }
                        _ => Err(self.expected("a number")),
                    }
                }
                _ => Err(self.expected(expected)),
            },
            _ => Err(self.expected(expected)),
        }
    }

    /// `"1.2"`, `"TLSv1.3"` or a bare number `1.2`.
    fn version(&mut self) -> PResult<(u8, u8)> {
        let t = self.advance();
        let text = match &t.tok {
            Tok::Str(s) => s.clone(),
            Tok::Num(_) => self.src[t.start..t.end].to_owned(),
            _ => {
                self.unadvance(&t);
                return Err(self.expected("a TLS version such as \"1.2\" or \"1.3\""));
            }
        };
        if let Some(v) = parse_tls_version(&text) {
            Ok(v)
        } else {
            self.value_error(
                &t,
                format!("{text:?} is not a TLS version: expected \"1.0\", \"1.1\", \"1.2\" or \"1.3\" (or \"TLSv1.3\")"),
            );
            Ok((1, 2))
        }
    }

    /// One value or a parenthesised list; values are strings, bare words or numbers,
    /// lowercased for case-insensitive comparison.
    fn values(&mut self) -> PResult<Vec<(String, Token)>> {
        let list = self.eat_punct('(');
        let mut out = Vec::new();
        loop {
            let t = self.advance();
            let v = match &t.tok {
                Tok::Str(s) => s.clone(),
                Tok::Word(w) => w.clone(),
                Tok::Num(_) => self.src[t.start..t.end].to_owned(),
                _ => {
                    self.unadvance(&t);
                    return Err(self.expected("a value: a \"string\", a word or a number"));
                }
            };
            out.push((v.to_lowercase(), t));
            if !list || !self.eat_punct(',') {
                break;
            }
        }
        if list {
            self.expect_punct(')', "`,` or `)` in the list of values")?;
        }
        Ok(out)
    }

    /// One string or a parenthesised list of strings.
    fn strings(&mut self) -> PResult<Vec<String>> {
        let list = self.eat_punct('(');
        let mut out = Vec::new();
        loop {
            out.push(self.expect_str("a word or phrase in double quotes")?.0);
            if !list || !self.eat_punct(',') {
                break;
            }
        }
        if list {
            self.expect_punct(')', "`,` or `)` in the list of words")?;
        }
        Ok(out)
    }

    fn dictionary(&mut self) -> PResult<usize> {
        let (name, tok) = self.expect_str("the dictionary name in double quotes")?;
        if !is_identifier(&name) {
            self.value_error(&tok, bad_identifier("dictionary", &name));
        }
        self.name_ref(NameKind::Dictionary, &name, &tok);
        Ok(
            if let Some(i) = self.dictionaries.iter().position(|d| *d == name) {
                i
            } else {
                self.dictionaries.push(name);
                self.dictionaries.len() - 1
            },
        )
    }

    fn compile(&mut self, pattern: &str, at: &Token, what: &str) -> Regex {
        match RegexBuilder::new(pattern)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_DFA_LIMIT)
            .nest_limit(u32::try_from(MAX_DEPTH).unwrap_or(64))
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                let detail = match e {
                    regex::Error::CompiledTooBig(n) => {
                        format!(
                            "it compiles to more than {n} bytes; simplify it (Unicode classes are large: \\w{{20}} alone is about 1 MB; [a-z0-9_] or (?-u:\\w) match ASCII only and are small)"
                        )
                    }
                    other => other.to_string(),
                };
                self.value_error(at, format!("bad {what}: {detail}"));
                never_matches()
            }
        }
    }

    fn regex(&mut self, pattern: &str, flags: &str, at: &Token) -> Regex {
        let mut inline = String::new();
        for f in flags.chars() {
            if "imsx".contains(f) && !inline.contains(f) {
                inline.push(f);
            } else {
                self.value_error(
                    at,
                    format!("bad regex flag `{f}`: allowed are i (ignore case), m (multi-line), s (dot matches newline), x (extended), each once"),
                );
            }
        }
        let full = if inline.is_empty() {
            pattern.to_owned()
        } else {
            format!("(?{inline}){pattern}")
        };
        self.compile(&full, at, "regex")
    }

    /// `*` any run of characters, `?` one character, anchored, case-insensitive.
    fn glob(&mut self, glob: &str, at: &Token) -> Regex {
        let mut re = String::from("(?is)^");
        for c in glob.chars() {
            match c {
                '*' => re.push_str(".*"),
                '?' => re.push('.'),
                c => re.push_str(&regex::escape(c.encode_utf8(&mut [0; 4]))),
            }
        }
        re.push('$');
        self.compile(&re, at, "pattern")
    }

    /// One regex per word or phrase: case-insensitive, inner white space matching any
    /// run of white space. The word boundaries are checked by the evaluator
    /// ([`crate::eval`]), not by `\b`: a Unicode `\b` makes the regex engine leave its
    /// DFA for a much slower one on non-ASCII text (measured: 62 ms for three words over
    /// 1 MiB of Cyrillic, against well under 1 ms without).
    fn contains_regexes(&mut self, phrases: &[String], at: &Token) -> Vec<Regex> {
        let mut out = Vec::new();
        for p in phrases {
            let p = p.trim();
            if p.is_empty() {
                self.value_error(
                    at,
                    "an empty word after `contains`: give at least one letter",
                );
                continue;
            }
            let words: Vec<String> = p.split_whitespace().map(regex::escape).collect();
            out.push(self.compile(&format!("(?i){}", words.join(r"\s+")), at, "word"));
        }
        out
    }

    /// The tokens `first..end` as written, joined by single spaces.
    fn quote(&self, first: usize, end: usize) -> String {
        let mut out = String::new();
        let mut prev_open = true;
        for t in &self.toks[first..end.min(self.toks.len())] {
            let close = matches!(t.tok, Tok::Punct(')' | ','));
            if !prev_open && !close {
                out.push(' ');
            }
            out.push_str(&self.src[t.start..t.end]);
            prev_open = t.tok == Tok::Punct('(');
        }
        out
    }
}

/// A regex that matches nothing, standing in for one that failed to compile (the parse
/// fails anyway; this keeps the tree well-formed).
fn never_matches() -> Regex {
    // Invariant: a fixed, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"[^\s\S]").unwrap()
}
