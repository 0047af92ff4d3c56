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

use postern_proto::{EnhancedCode, Limits, Mailbox};
use regex::{Regex, RegexBuilder};

use crate::ast::{Action, CmpOp, Expr, Field, Flag, NameKind, NameRef, Op, Rule, RuleReply, Test};
use crate::error::{MAX_ERRORS, ParseError};
use crate::lexer::{Tok, Token, tokenize};

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
    /// Value errors: recorded, parsing goes on.
    errors: Vec<ParseError>,
    dictionaries: Vec<String>,
    names: Vec<NameRef>,
    depth: usize,
}

/// Parses a whole rule file.
pub(crate) fn parse(source: &str, origin: &str) -> Result<Parsed, Vec<ParseError>> {
    if source.len() > MAX_SOURCE {
        return Err(vec![ParseError::new(
            origin,
            1,
            1,
            format!(
                "rule file is {} bytes; at most {MAX_SOURCE} bytes are allowed (split it into several files)",
                source.len()
            ),
        )]);
    }
    let (toks, lex_errors) = tokenize(source, origin);
    let mut p = Parser {
        toks,
        pos: 0,
        src: source,
        origin,
        errors: Vec::new(),
        dictionaries: Vec::new(),
        names: Vec::new(),
        depth: 0,
    };
    let mut rules: Vec<Rule> = Vec::new();
    let mut syntax_errors = Vec::new();
    while p.peek().tok != Tok::Eof {
        if rules.len() >= MAX_RULES {
            let t = p.peek();
            syntax_errors.push(ParseError::new(
                origin,
                t.line,
                t.column,
                format!("more than {MAX_RULES} rules in one file"),
            ));
            break;
        }
        match p.rule() {
            Ok(rule) => {
                if let Some(first) = rules.iter().find(|r| r.name == rule.name) {
                    let msg = format!(
                        "rule name {:?} is used twice (first at line {}); rule names must be unique",
                        rule.name, first.line
                    );
                    p.errors.push(ParseError::new(origin, rule.line, 1, msg));
                }
                rules.push(rule);
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
    let mut errors = lex_errors;
    errors.append(&mut syntax_errors);
    errors.append(&mut p.errors);
    if errors.is_empty() {
        return Ok(Parsed {
            rules,
            dictionaries: p.dictionaries,
            names: p.names,
        });
    }
    errors.sort_by_key(|e| (e.line, e.column));
    errors.dedup();
    if errors.len() > MAX_ERRORS {
        errors.truncate(MAX_ERRORS);
        let last = &errors[MAX_ERRORS - 1];
        let (line, column) = (last.line, last.column);
        errors.push(ParseError::new(
            origin,
            line,
            column,
            format!("more than {MAX_ERRORS} errors; the rest are not reported"),
        ));
    }
    Err(errors)
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
                    Ok(Op::Contains(self.contains_regex(&phrases, &t)))
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
                        format!("it compiles to more than {n} bytes; simplify it")
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

    /// Words or phrases, case-insensitive, on word boundaries where the phrase starts or
    /// ends with a word character; inner whitespace matches any run of whitespace.
    fn contains_regex(&mut self, phrases: &[String], at: &Token) -> Regex {
        let mut alts = Vec::new();
        for p in phrases {
            let p = p.trim();
            if p.is_empty() {
                self.value_error(
                    at,
                    "an empty word after `contains`: give at least one letter",
                );
                continue;
            }
            let mut re = String::new();
            if p.starts_with(|c: char| c.is_alphanumeric() || c == '_') {
                re.push_str(r"\b");
            }
            let words: Vec<String> = p.split_whitespace().map(regex::escape).collect();
            re.push_str(&words.join(r"\s+"));
            if p.ends_with(|c: char| c.is_alphanumeric() || c == '_') {
                re.push_str(r"\b");
            }
            alts.push(re);
        }
        self.compile(&format!("(?i)(?:{})", alts.join("|")), at, "word list")
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

    // ---- actions ----------------------------------------------------------------------

    fn actions(&mut self) -> PResult<Vec<Action>> {
        let mut out: Vec<Action> = Vec::new();
        let mut final_at: Option<Token> = None;
        loop {
            let at = self.peek().clone();
            let action = self.action()?;
            if let Some(f) = &final_at
                && action != Action::Stop
            {
                self.value_error(
                    &at,
                    format!(
                        "`{action}` follows a final action (line {}, column {}) and would never run: put it before, or in another rule",
                        f.line, f.column
                    ),
                );
            }
            if action.is_final() && final_at.is_none() {
                final_at = Some(at);
            }
            out.push(action);
            if !self.eat_punct(';') || self.peek().tok == Tok::Punct('}') {
                break;
            }
        }
        Ok(out)
    }

    fn action(&mut self) -> PResult<Action> {
        const ACTIONS: &str = "an action: accept, drop, reject, bounce, quarantine, add-header, remove-header, change-header, prefix-subject, redirect, bcc, notify, require-tls or stop";
        let w = match &self.peek().tok {
            Tok::Word(w) => w.to_ascii_lowercase(),
            _ => return Err(self.expected(ACTIONS)),
        };
        self.advance();
        Ok(match w.as_str() {
            "accept" => Action::Accept,
            "drop" => Action::Drop,
            "stop" => Action::Stop,
            "require-tls" => Action::RequireTls,
            "reject" => Action::Reject(self.reply(false)?),
            "bounce" => Action::Bounce(self.reply(true)?),
            "quarantine" => {
                let (name, tok) = self.expect_str("the quarantine name in double quotes")?;
                if !is_identifier(&name) {
                    self.value_error(&tok, bad_identifier("quarantine", &name));
                }
                self.name_ref(NameKind::Quarantine, &name, &tok);
                Action::Quarantine { name }
            }
            "add-header" | "change-header" => {
                let name = self.header_name()?;
                let (value, tok) = self.expect_str("the header field value in double quotes")?;
                self.check_header_value(&value, &tok);
                if w == "add-header" {
                    Action::AddHeader { name, value }
                } else {
                    Action::ChangeHeader { name, value }
                }
            }
            "remove-header" => Action::RemoveHeader {
                name: self.header_name()?,
            },
            "prefix-subject" => {
                let (text, tok) = self.expect_str("the subject prefix in double quotes")?;
                if text.is_empty() || text.len() > 200 || text.chars().any(char::is_control) {
                    self.value_error(
                        &tok,
                        "a subject prefix must be 1 to 200 bytes without control characters (no CR/LF)",
                    );
                }
                Action::PrefixSubject { text }
            }
            "redirect" => Action::Redirect {
                address: self.address()?,
            },
            "bcc" => Action::Bcc {
                address: self.address()?,
            },
            "notify" => {
                let address = self.address()?;
                self.expect_word("template", "`template \"name\"` after the address")?;
                let (template, tok) = self.expect_str("the template name in double quotes")?;
                if !is_identifier(&template) {
                    self.value_error(&tok, bad_identifier("template", &template));
                }
                self.name_ref(NameKind::Template, &template, &tok);
                Action::Notify { address, template }
            }
            _ => {
                self.pos -= 1;
                return Err(self.expected(ACTIONS));
            }
        })
    }

    fn header_name(&mut self) -> PResult<String> {
        let (name, tok) = self.expect_str("the header field name in double quotes")?;
        if !is_field_name(&name) {
            self.value_error(&tok, bad_field_name(&name));
        }
        Ok(name)
    }

    fn check_header_value(&mut self, value: &str, at: &Token) {
        // RFC 5322 §2.2: a field body may not contain CR or LF except as folding; we
        // never fold a value a rule gives, so none at all (header injection).
        if value.chars().any(|c| c.is_control() && c != '\t') {
            self.value_error(
                at,
                "a header value may not contain CR, LF or other control characters (only tab)",
            );
        } else if value.len() > MAX_HEADER_VALUE {
            self.value_error(
                at,
                format!("a header value may be at most {MAX_HEADER_VALUE} bytes (RFC 5322 §2.1.1 line limit)"),
            );
        }
    }

    fn address(&mut self) -> PResult<String> {
        let (addr, tok) = self.expect_str("an email address in double quotes")?;
        if Mailbox::parse(&addr, &Limits::default()).is_err() {
            self.value_error(
                &tok,
                format!("{addr:?} is not a valid address: expected local-part@domain (RFC 5321 §4.1.2), without <>"),
            );
        }
        Ok(addr)
    }

    /// `CODE "X.Y.Z" "text"`.
    fn reply(&mut self, bounce: bool) -> PResult<RuleReply> {
        let code_tok = self.advance();
        let Tok::Num(n) = code_tok.tok else {
            self.unadvance(&code_tok);
            return Err(self.expected("a reply code such as 550"));
        };
        let (enh, enh_tok) =
            self.expect_str("the enhanced status code in quotes, such as \"5.7.1\"")?;
        let (text, text_tok) = self.expect_str("the reply text in double quotes")?;
        // RFC 5321 §4.2.1: 4yz transient, 5yz permanent; y in 0..=5. 421 closes the
        // session (§3.8), which is not a filter's call.
        #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
        let code = if n.fract() == 0.0 && (0.0..1000.0).contains(&n) {
            n as u16
        } else {
            0
        };
        let allowed = if bounce {
            (500..=559).contains(&code)
        } else {
            (400..=459).contains(&code) || (500..=559).contains(&code)
        };
        if !allowed || code == 421 {
            let allowed = if bounce {
                "a bounce needs a 5xx code (550 to 559 typically; RFC 5321 §4.2.1)"
            } else {
                "a 4xx (temporary, not 421) or 5xx (permanent) code with a second digit 0 to 5 (RFC 5321 §4.2.1)"
            };
            let src = &self.src[code_tok.start..code_tok.end];
            self.value_error(&code_tok, format!("bad reply code {src}: {allowed}"));
        }
        let enhanced = match parse_enhanced(&enh) {
            Some(e) if code / 100 == u16::from(e.class) => e,
            Some(e) => {
                self.value_error(
                    &enh_tok,
                    format!("enhanced code {enh:?} has class {} but the reply code is {code}: the first digits must agree (RFC 3463 §3.1)", e.class),
                );
                e
            }
            None => {
                self.value_error(
                    &enh_tok,
                    format!("bad enhanced status code {enh:?}: expected class.subject.detail such as \"5.7.1\" (class 4 or 5, then 1 to 3 digits each; RFC 3463 §3)"),
                );
                EnhancedCode::new(5, 0, 0)
            }
        };
        if text.is_empty()
            || text.len() > MAX_REPLY_TEXT
            || !text.bytes().all(|b| (0x20..0x7f).contains(&b))
        {
            self.value_error(
                &text_tok,
                format!("reply text must be 1 to {MAX_REPLY_TEXT} printable ASCII characters (no CR/LF: RFC 5321 §4.2)"),
            );
        }
        Ok(RuleReply {
            code,
            enhanced,
            text,
        })
    }
}

/// A regex that matches nothing, standing in for one that failed to compile (the parse
/// fails anyway; this keeps the tree well-formed).
fn never_matches() -> Regex {
    // Invariant: a fixed, valid pattern.
    #[allow(clippy::unwrap_used)]
    Regex::new(r"[^\s\S]").unwrap()
}

/// RFC 5322 §3.6.8: field-name = 1*ftext, ftext = %d33-57 / %d59-126.
pub(crate) fn is_field_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 76 && s.bytes().all(|b| (33..=126).contains(&b) && b != b':')
}

fn bad_field_name(name: &str) -> String {
    format!(
        "{name:?} is not a header field name: 1 to 76 printable ASCII characters, no space or colon (RFC 5322 §3.6.8)"
    )
}

/// Names of dictionaries, quarantines and templates: the configuration's rule for names
/// (`[a-z0-9_-]`, 1 to 64 bytes, starting with a letter or digit), so a name a rule uses
/// can be defined.
pub(crate) fn is_identifier(s: &str) -> bool {
    s.len() <= 64
        && s.starts_with(|c: char| c.is_ascii_lowercase() || c.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
}

fn bad_identifier(what: &str, name: &str) -> String {
    format!(
        "{name:?} is not a {what} name: a letter or digit, then letters, digits, `_`, `-` or `.`, at most 64"
    )
}

/// `class.subject.detail` (RFC 3463 §3.1): class 4 or 5 here, 1 to 3 digits each.
fn parse_enhanced(s: &str) -> Option<EnhancedCode> {
    let mut parts = s.split('.');
    let (c, sub, det) = (parts.next()?, parts.next()?, parts.next()?);
    if parts.next().is_some()
        || ![c, sub, det]
            .iter()
            .all(|p| (1..=3).contains(&p.len()) && p.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    let class: u8 = c.parse().ok()?;
    if class != 4 && class != 5 {
        return None;
    }
    Some(EnhancedCode::new(
        class,
        sub.parse().ok()?,
        det.parse().ok()?,
    ))
}

/// "1.2", "TLSv1.2", "TLS1.3" → (1, 2).
pub(crate) fn parse_tls_version(s: &str) -> Option<(u8, u8)> {
    let s = s.trim();
    let digits = s
        .strip_prefix("TLSv")
        .or_else(|| s.strip_prefix("tlsv"))
        .or_else(|| s.strip_prefix("TLS"))
        .unwrap_or(s);
    let (a, b) = digits.split_once('.')?;
    let v = (a.parse().ok()?, b.parse().ok()?);
    (v.0 == 1 && v.1 <= 3).then_some(v)
}
