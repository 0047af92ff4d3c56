//! Dictionaries: file format and its errors, word-boundary matching, case,
//! phrases, weights, membership of addresses and domains, 100 000 entries,
//! live reload.

use std::path::PathBuf;
use std::time::Instant;

use postern_content::{DictError, Dictionaries, Dictionary, RefreshOutcome};

fn dict(text: &str) -> Dictionary {
    Dictionary::parse("test", text).expect("valid dictionary")
}

fn found(d: &Dictionary, text: &str) -> Vec<String> {
    d.find_in(text).map(|m| m.matched.to_owned()).collect()
}

#[test]
fn word_boundaries_and_case() {
    let d = dict("cat\n");
    assert_eq!(found(&d, "the Cat sat"), ["Cat"]);
    assert!(found(&d, "concatenate").is_empty());
    assert!(found(&d, "cats").is_empty());
    assert!(found(&d, "bobcat").is_empty());
    assert!(found(&d, "cat_food").is_empty(), "_ is a word character");
    assert_eq!(found(&d, "cat."), ["cat"]);
    assert_eq!(found(&d, "(CAT)"), ["CAT"]);
    assert_eq!(found(&d, "cat-food cat"), ["cat", "cat"]);
    assert_eq!(found(&d, "1cat"), Vec::<String>::new());
    assert!(!d.matches("concatenate"));
    assert!(d.matches("a CAT!"));
}

#[test]
fn unicode_case_and_boundaries() {
    let d = dict("Ärger\nstraße\n");
    assert_eq!(found(&d, "Viel ÄRGER heute"), ["ÄRGER"]);
    assert_eq!(found(&d, "die Straße."), ["Straße"]);
    assert!(
        found(&d, "Ärgernis").is_empty(),
        "ä, r, n are letters: no boundary"
    );
}

#[test]
fn offsets_point_into_the_original_text() {
    let d = dict("ex employee\n");
    let text = "Re: our EX \r\n\t Employee, again";
    let m: Vec<_> = d.find_in(text).collect();
    assert_eq!(m.len(), 1);
    assert_eq!(m[0].matched, "EX \r\n\t Employee");
    assert_eq!(&text[m[0].start..m[0].end], m[0].matched);
    assert_eq!(m[0].entry, "ex employee");
}

#[test]
fn phrases_and_punctuation() {
    let d = dict("free money\n@spam.example\nc++\nwin $$$\n");
    assert_eq!(found(&d, "Get FREE   money now"), ["FREE   money"]);
    assert!(found(&d, "carefree money").is_empty());
    assert_eq!(found(&d, "mail bob@spam.example."), ["@spam.example"]);
    assert_eq!(found(&d, "I like C++!"), ["C++"]);
    assert_eq!(
        found(&d, "win $$$$"),
        ["win $$$"],
        "no boundary after a non-word edge"
    );
}

#[test]
fn overlapping_entries_are_not_lost() {
    // A leftmost-longest automaton would consume "the cat" inside "bathe cat",
    // reject it at the boundary, and never see "cat".
    let d = dict("the cat\ncat\n");
    assert_eq!(found(&d, "bathe cat"), ["cat"]);
    // The longer entry wins where both are valid.
    let d = dict("ex employee, 5\nemployee, 1\nex, 2\n");
    let m: Vec<_> = d
        .find_in("our ex employee")
        .map(|m| (m.entry, m.weight))
        .collect();
    assert_eq!(m, [("ex employee", 5)]);
    assert_eq!(d.score("our ex employee"), 5);
    // The longest fails its end boundary: the shorter ones at the same start still count.
    let m: Vec<_> = d.find_in("ex employees").map(|m| m.entry).collect();
    assert_eq!(m, ["ex"]);
    assert!(d.contains("employee"));
    assert!(d.contains("EX Employee"));
}

#[test]
fn empty_dictionaries_and_texts() {
    let d = dict("# nothing but comments\n\n   \n");
    assert!(d.is_empty());
    assert_eq!(d.find_in("any text").count(), 0);
    assert!(!d.contains("x"));
    assert_eq!(dict("cat\n").find_in("").count(), 0);
    assert_eq!(dict("cat\n").score("   "), 0);
}

#[test]
fn weights_and_score() {
    let d = dict("viagra, 10\ncasino, 3\nwinner\n");
    assert_eq!(d.score("Casino winner! viagra viagra"), 3 + 1 + 10 + 10);
    assert_eq!(d.score("nothing here"), 0);
    assert_eq!(d.weight_of("CASINO"), Some(3));
    assert_eq!(d.weight_of("winner"), Some(1));
}

#[test]
fn scripts_without_spaces_match_inside_words() {
    let d = dict("免费\n");
    assert_eq!(found(&d, "这是免费的"), ["免费"]);
}

#[test]
fn membership_of_addresses_and_domains() {
    let d = dict("john.doe@example.com\n@competitor.example\n@.spam.example\nplain phrase\n");
    assert!(d.contains("John.Doe@Example.com"));
    assert!(d.contains("<john.doe@example.com>"));
    assert!(!d.contains("jane@example.com"));
    assert!(d.contains("anyone@competitor.example"));
    assert!(
        !d.contains("anyone@sub.competitor.example"),
        "@domain is that domain only"
    );
    assert!(d.contains("competitor.example"), "a bare domain");
    assert!(d.contains("x@a.b.spam.example"), "@.domain: any subdomain");
    assert!(
        !d.contains("x@spam.example"),
        "@.domain: not the domain itself"
    );
    assert!(d.contains("Plain  Phrase"));
    assert!(!d.contains("plain"));
    assert!(!d.contains(""));
}

#[test]
fn file_format_comments_quotes_and_errors() {
    let d = dict("\u{feff}# a comment\n\n  spaced entry  \r\n\"#tag\", 2\n\"chapter, 11\"\nc#\n");
    assert_eq!(d.len(), 4);
    assert!(d.contains("#TAG"));
    assert!(d.contains("chapter, 11"));
    assert!(d.contains("c#"));
    assert!(d.contains("spaced entry"));

    let cases: &[(&str, usize, &str)] = &[
        ("ok\nbad, -1\n", 2, "weight"),
        ("ok\n\nbad, 2000000\n", 3, "weight"),
        ("\"unterminated\n", 1, "closing double quote"),
        ("\"a\" junk\n", 1, "after a quoted entry"),
        ("a\n\"\", 3\n", 2, "empty"),
        ("dup, 1\nDUP, 2\n", 2, "line 1"),
    ];
    for (text, line, needle) in cases {
        let err = Dictionary::parse("t", text).expect_err(text);
        assert_eq!(err.line(), Some(*line), "{text:?}: {err}");
        assert!(err.to_string().contains(needle), "{text:?}: {err}");
    }
    let long = "x".repeat(2000);
    assert_eq!(
        Dictionary::parse("t", &long).expect_err("long").line(),
        Some(1)
    );
}

#[test]
fn invalid_utf8_names_the_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("bad.txt");
    std::fs::write(&path, b"one\ntwo\nth\xffree\n").expect("write");
    let err = Dictionary::load("bad", &path).expect_err("invalid UTF-8");
    assert_eq!(err.line(), Some(3), "{err}");
    assert!(err.to_string().contains("UTF-8"), "{err}");
    assert!(err.to_string().contains("bad.txt"), "{err}");
    let missing = Dictionary::load("gone", &dir.path().join("nope")).expect_err("missing");
    assert!(matches!(missing, DictError::Io { .. }), "{missing}");
}

/// 100 000 generated entries: membership and find over a 10 KiB text.
fn generated(n: usize) -> String {
    let mut s = String::with_capacity(n * 16);
    for i in 0..n {
        // Letters only, so entries are whole words: "w" + base-26 of i.
        let mut word = String::from("w");
        let mut k = i;
        loop {
            word.push(char::from(b'a' + u8::try_from(k % 26).expect("< 26")));
            k /= 26;
            if k == 0 {
                break;
            }
        }
        s.push_str(&word);
        if i % 10 == 0 {
            s.push_str(" phrase");
        }
        s.push_str(", ");
        s.push_str(&(i % 7 + 1).to_string());
        s.push('\n');
    }
    s
}

fn ten_kib_text() -> String {
    let mut t = String::new();
    let mut i = 0u32;
    while t.len() < 10 * 1024 {
        t.push_str("Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do ");
        t.push_str("item");
        t.push_str(&i.to_string());
        t.push(' ');
        i += 1;
    }
    // Two hits: "wab" (entry 26) and "wa phrase" (entry 0).
    t.push_str(" and WAB here and wa phrase there.");
    t
}

#[test]
fn hundred_thousand_entries() {
    let started = Instant::now();
    let d = dict(&generated(100_000));
    let built = started.elapsed();
    assert_eq!(d.len(), 100_000);
    assert!(d.contains("wab"));
    assert!(d.contains("WA PHRASE"));
    assert!(!d.contains("wzzzzz"));
    let text = ten_kib_text();
    let started = Instant::now();
    let hits: Vec<_> = d.find_in(&text).map(|m| m.matched.to_owned()).collect();
    let find = started.elapsed();
    assert_eq!(hits, ["WAB", "wa phrase"]);
    // Figures only (never asserted): `cargo test -p postern-content --test dict -- --nocapture`.
    println!(
        "100k entries: build {built:?}, find over {} bytes {find:?}",
        text.len()
    );
}

#[test]
fn dictionaries_reload_on_change_and_keep_old_on_error() {
    let dir = tempfile::tempdir().expect("tempdir");
    let a: PathBuf = dir.path().join("a.txt");
    let b: PathBuf = dir.path().join("b.txt");
    std::fs::write(&a, "alpha\n").expect("write");
    std::fs::write(&b, "beta\n").expect("write");
    let set =
        Dictionaries::load(&[("a".into(), a.clone()), ("b".into(), b.clone())]).expect("load");
    assert_eq!(set.names(), ["a", "b"]);
    assert!(set.refresh().is_empty(), "nothing changed");
    let held = set.get("a").expect("a");

    // A good change is loaded (different size, so the stamp differs even
    // within one mtime tick).
    std::fs::write(&a, "alpha\ngamma\n").expect("write");
    let r = set.refresh();
    assert_eq!(r.len(), 1);
    assert_eq!(r[0].name, "a");
    assert!(matches!(
        r[0].outcome,
        RefreshOutcome::Reloaded { entries: 2 }
    ));
    assert!(set.get("a").expect("a").contains("gamma"));
    assert!(
        !held.contains("gamma"),
        "a reader keeps the version it holds"
    );

    // A bad change keeps the old contents and is reported once.
    std::fs::write(&a, "alpha\nbad, -5\nmore\n").expect("write");
    let r = set.refresh();
    assert_eq!(r.len(), 1);
    match &r[0].outcome {
        RefreshOutcome::Failed(e) => {
            assert_eq!(e.line(), Some(2), "{e}");
            assert!(
                r[0].to_string().contains("kept the previous version"),
                "{}",
                r[0]
            );
        }
        other @ RefreshOutcome::Reloaded { .. } => panic!("expected a failure, got {other:?}"),
    }
    assert!(set.get("a").expect("a").contains("gamma"));
    assert!(set.refresh().is_empty(), "reported once");

    // A removed file keeps the old contents too.
    std::fs::remove_file(&b).expect("rm");
    let r = set.refresh();
    assert!(matches!(
        r[0].outcome,
        RefreshOutcome::Failed(DictError::Io { .. })
    ));
    assert!(set.get("b").expect("b").contains("beta"));
    assert!(set.get("c").is_none());

    let dup = Dictionaries::load(&[("a".into(), a.clone()), ("a".into(), a)]);
    assert!(matches!(dup, Err(DictError::DuplicateName { .. })));
}

/// Random texts and dictionaries over a small alphabet (case, white space,
/// punctuation, non-ASCII letters): `find_in` equals a naive search (every
/// entry at every position, word boundaries, then leftmost-longest), and
/// every match points at its text.
#[test]
fn find_in_agrees_with_a_naive_search() {
    const ALPHABET: &[char] = &[
        'a', 'B', 'c', ' ', ' ', '\n', '.', 'Ä', 'ä', 'Σ', 'σ', 'ς', '_',
    ];
    fn fold(s: &str) -> String {
        let mut out = String::new();
        let mut pending = false;
        for c in s.chars() {
            if c.is_whitespace() {
                pending = !out.is_empty();
                continue;
            }
            if pending {
                out.push(' ');
                pending = false;
            }
            match c {
                'ς' | 'Σ' => out.push('σ'),
                c => out.extend(c.to_lowercase()),
            }
        }
        out
    }
    fn word(c: char) -> bool {
        c.is_alphanumeric() || c == '_'
    }
    fn naive(entries: &[String], text: &str) -> Vec<String> {
        let hay = fold(text);
        let mut found = Vec::new();
        for e in entries {
            let key = fold(e);
            for (at, _) in hay
                .match_indices(key.as_str())
                .collect::<Vec<_>>()
                .iter()
                .copied()
                .chain(
                    // match_indices skips overlapping occurrences of one entry; add them.
                    (0..hay.len())
                        .filter(|&i| hay.is_char_boundary(i) && hay[i..].starts_with(key.as_str()))
                        .map(|i| (i, "")),
                )
            {
                let end = at + key.len();
                let first = key.chars().next().is_some_and(word);
                let last = key.chars().next_back().is_some_and(word);
                let before = hay[..at].chars().next_back();
                let after = hay[end..].chars().next();
                let ok_before = !first || before.is_none_or(|b| !word(b));
                let ok_after = !last || after.is_none_or(|a| !word(a));
                if ok_before && ok_after {
                    found.push((at, end, key.clone()));
                }
            }
        }
        found.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
        found.dedup();
        let mut out = Vec::new();
        let mut taken = 0;
        for (s, e, k) in found {
            if s >= taken {
                taken = e;
                out.push(k);
            }
        }
        out
    }

    let mut state: u64 = 0x2545_f491_4f6c_dd1d;
    let mut next = move |n: usize| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        usize::try_from(state % n as u64).expect("fits")
    };
    for _ in 0..400 {
        let mut entries: Vec<String> = Vec::new();
        for _ in 0..=next(6) {
            let len = 1 + next(4);
            let e: String = (0..len).map(|_| ALPHABET[next(ALPHABET.len())]).collect();
            let f = fold(&e);
            if !f.is_empty() && !entries.iter().any(|x| fold(x) == f) {
                entries.push(e);
            }
        }
        if entries.is_empty() {
            continue;
        }
        let mut source = String::new();
        for e in &entries {
            source.push('"');
            source.push_str(
                &e.replace('\n', " ")
                    .replace('\\', "\\\\")
                    .replace('"', "\\\""),
            );
            source.push_str("\"\n");
        }
        let d = Dictionary::parse("random", &source).expect("quoted entries parse");
        let len = next(40);
        let text: String = (0..len).map(|_| ALPHABET[next(ALPHABET.len())]).collect();
        let ours: Vec<_> = d.find_in(&text).collect();
        for m in &ours {
            assert_eq!(&text[m.start..m.end], m.matched);
            assert_eq!(fold(m.matched), fold(m.entry), "{text:?} {m:?}");
        }
        let ours: Vec<String> = ours.iter().map(|m| fold(m.entry)).collect();
        assert_eq!(
            ours,
            naive(&entries, &text),
            "text {text:?}, entries {entries:?}"
        );
        assert_eq!(d.matches(&text), !ours.is_empty());
    }
}

#[test]
fn dotted_capital_i_does_not_break_offsets() {
    // "İ" folds to "i" + U+0307: an entry "i" matches inside it.
    let d = dict("i\n");
    for m in d.find_in("İ x İ") {
        assert!(m.start < m.end);
        assert_eq!(m.matched, "İ");
    }
}
