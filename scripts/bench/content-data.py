#!/usr/bin/env python3
"""Test data for scripts/bench/content.sh (issue 11, "Performance").

Writes into DIR:
  message.eml          a ~10 KiB multipart/mixed message: English prose in a
                       text/plain part and a small base64 PDF attachment
                       ("draft-report.pdf"); the word TAG_WORD is in the body
                       exactly twice, nowhere else;
  blocklist.txt        100 000 entries: addresses, @domains, @.domains,
                       made-up words and phrases (some weighted); none occurs
                       in the message or equals its sender or recipient;
  blocklist-tag.txt    the same 99 999 first entries plus TAG_WORD;
  ex-employees.txt, partners.txt, confidential.txt: small dictionaries;
  message.rules        50 rules: envelope, header, subject, body, attachment,
                       size, session and verdict tests; rule 50 adds
                       "X-Postern-Listed" when the body has an entry of
                       "blocklist" (only with blocklist-tag.txt).

Usage: content-data.py DIR
Deterministic (fixed seed): every call writes the same files.
"""

import base64
import random
import re
import sys

TAG_WORD = "milestones"
ENTRIES = 100_000


def prose(rng: random.Random, size: int) -> str:
    sentences = [
        "The team reviewed the schedule for the next release and agreed on the open items.",
        "Please read the attached draft before our meeting on Thursday afternoon.",
        "Budget figures for the second half are still being collected from each department.",
        "We expect the vendor to confirm the delivery dates by the end of next week.",
        "Customer feedback from the pilot was positive, with a few usability questions.",
        "The support rota changes from Monday: the new list is on the shared calendar.",
        "Facilities will close the north entrance for maintenance during the weekend.",
        "Hiring for the two open positions continues; interviews start in January.",
        "Travel requests need the approval of your manager before tickets are booked.",
        "The office kitchen will be cleaned on Friday, so please take your cups home.",
        "Legal asked us to keep the contract terms internal until they are signed.",
        "Our quarterly numbers look stable, and the forecast has not changed much.",
        "Several people asked about parking; the garage has spaces after nine o'clock.",
        "The training session on the new expense tool will be recorded for later.",
        "If you have questions about the draft, reply to this message or call me.",
    ]
    out = []
    while sum(len(s) + 1 for s in out) < size:
        out.append(rng.choice(sentences))
    text = " ".join(out)
    # The tag word twice, in the middle and near the end (a score of 2).
    words = text.split(" ")
    words.insert(len(words) // 2, TAG_WORD)
    words.insert(len(words) - 5, TAG_WORD)
    lines, line = [], ""
    for w in words:
        if len(line) + 1 + len(w) > 76:
            lines.append(line)
            line = w
        else:
            line = f"{line} {w}" if line else w
    lines.append(line)
    # Paragraphs every 6 lines.
    paras = ["\n".join(lines[i:i + 6]) for i in range(0, len(lines), 6)]
    return "Hello Sam,\n\n" + "\n\n".join(paras) + "\n\nBest regards,\nDana\n"


def message(rng: random.Random) -> str:
    pdf = b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n" + bytes(rng.randrange(256) for _ in range(2000))
    b64 = base64.b64encode(pdf).decode()
    b64 = "\n".join(b64[i:i + 76] for i in range(0, len(b64), 76))
    body = prose(rng, 6900)
    return (
        'From: "Dana Whitfield" <sender@bench.example.com>\n'
        'To: "Sam Okafor" <rcpt@bench.example.net>\n'
        "Subject: Planning notes and the draft report\n"
        "Message-ID: <content-bench.1@bench.example.com>\n"
        "Date: Sun, 06 Dec 2026 20:00:00 +0000\n"
        "MIME-Version: 1.0\n"
        "X-Mailer: Evolution 3.46.4\n"
        'Content-Type: multipart/mixed; boundary="=_bench_4f2a"\n'
        "\n"
        "This is a multi-part message in MIME format.\n"
        "\n"
        "--=_bench_4f2a\n"
        "Content-Type: text/plain; charset=utf-8\n"
        "Content-Transfer-Encoding: 7bit\n"
        "\n"
        f"{body}\n"
        "--=_bench_4f2a\n"
        'Content-Type: application/pdf; name="draft-report.pdf"\n'
        "Content-Transfer-Encoding: base64\n"
        'Content-Disposition: attachment; filename="draft-report.pdf"\n'
        "\n"
        f"{b64}\n"
        "--=_bench_4f2a--\n"
    )


def word(rng: random.Random) -> str:
    onsets = ["b", "br", "d", "dr", "f", "g", "gl", "k", "kr", "l", "m", "n", "p", "pl",
              "qu", "r", "s", "st", "t", "tr", "v", "z", "zh", "x"]
    vowels = ["a", "e", "i", "o", "u", "ai", "ou", "y"]
    codas = ["", "", "n", "r", "s", "x", "th", "nd", "lk"]
    return "".join(rng.choice(onsets) + rng.choice(vowels) + rng.choice(codas)
                   for _ in range(rng.randrange(2, 5)))


def blocklist(rng: random.Random, forbidden: set) -> list:
    entries, seen = [], set()

    def add(e: str) -> None:
        key = e.split(",")[0].strip().lower()
        # Words and phrases are searched in the text: none may be a word of it.
        clash = "@" not in key and set(re.findall(r"[a-z0-9]+", key)) & forbidden
        if key not in seen and not clash:
            seen.add(key)
            entries.append(e)

    while len(entries) < 40_000:
        add(f"{word(rng)}.{word(rng)}{rng.randrange(100)}@{word(rng)}.example")
    while len(entries) < 50_000:
        add(f"@{'.' if rng.random() < 0.3 else ''}{word(rng)}-{word(rng)}.example")
    while len(entries) < 85_000:
        w = word(rng)
        add(f"{w}, {rng.randrange(1, 6)}" if rng.random() < 0.2 else w)
    while len(entries) < ENTRIES:
        add(f"{word(rng)} {word(rng)}")
    return entries


RULES = r'''# 50 rules for scripts/bench/content.sh: what a gateway's message filters
# typically hold. The benchmark message matches none of the final actions.

# --- envelope -----------------------------------------------------------------
rule "ex-employees" {
    if sender in dictionary "ex-employees" or recipient in dictionary "ex-employees"
    then bounce 550 "5.7.1" "This person no longer works here"
}
rule "blocked-sender" { if sender in dictionary "blocklist" then reject 550 "5.7.1" "Sender blocked" }
rule "blocked-recipient" { if recipient in dictionary "blocklist" then reject 550 "5.7.1" "Recipient blocked" }
rule "partners-over-tls" { if sender in dictionary "partners" and tls then accept }
rule "bulk-null-sender" { if sender is "" and attachment count > 0 then quarantine "policy" }
rule "noreply-recipients" { if recipient matches "noreply-*@corp.example" then drop }
rule "spam-subdomains" { if sender matches "*@*.spam.example" then drop }
rule "contractors" {
    if auth-user matches "*@contractors.corp.example" and recipient domain is "partner.example"
    then reject 550 "5.7.1" "Contractors may not write to partners"
}
rule "legal" { if recipient domain is "legal.corp.example" then bcc "legal-archive@corp.example"; require-tls }
rule "client-range" { if client-ip matches "192.0.2.*" then reject 554 "5.7.1" "Network blocked" }
rule "helo-literal" {
    if helo matches /^\[?\d+\.\d+\.\d+\.\d+\]?$/ and not authenticated
    then add-header "X-Helo-Literal" "yes"
}

# --- headers ------------------------------------------------------------------
rule "spoofed-executive" {
    if header "From" matches /\b(ceo|cfo|president)@corp\.example\b/i and not authenticated
    then quarantine "policy"
}
rule "reply-to-freemail" {
    if header "Reply-To" matches /@(gmail|yahoo|outlook|hotmail)\.[a-z]+$/i
       and header "From" matches /@corp\.example/i
    then quarantine "policy"
}
rule "bulk-mailers" { if header "X-Mailer" matches /(PHPMailer|MassMail|Bulk ?Mailer)/i then quarantine "spam" }
rule "bulk-without-unsubscribe" {
    if header "Precedence" is ("bulk", "junk") and not header "List-Unsubscribe" exists
    then quarantine "spam"
}
rule "undisclosed" {
    if header "To" contains "undisclosed recipients" and attachment count > 0
    then quarantine "spam"
}
rule "no-message-id" { if not header "Message-ID" exists and size > 1M then quarantine "policy" }
rule "header-dictionary" { if header "From" in dictionary "blocklist" then quarantine "policy" }
rule "internal-route" { if listener is "outbound" then remove-header "X-Internal-Route"; change-header "X-Mailer" "Postern" }

# --- subject --------------------------------------------------------------------
rule "lottery" {
    if subject contains ("lottery", "you have won", "inheritance", "beneficiary", "claim your prize")
    then quarantine "spam"
}
rule "wire-fraud" {
    if subject contains ("urgent wire", "wire transfer", "payment update") and not sender domain is "corp.example"
    then quarantine "policy"
}
rule "invoice-archive" { if subject matches /invoice.*\.(exe|zip|rar)/i then quarantine "attachments" }
rule "shouting" { if subject matches /^[^a-z]{30,}$/ then add-header "X-Shouting" "yes" }
rule "cyrillic-subject" { if subject matches /[\x{0400}-\x{04FF}]{12}/ then add-header "X-Script" "cyrillic" }
rule "subject-dictionary" { if subject in dictionary "blocklist" then quarantine "policy" }

# --- body ------------------------------------------------------------------------
rule "phishing" {
    if body contains ("verify your account", "confirm your password", "account suspended",
                      "unusual sign-in activity", "update your billing information")
    then quarantine "spam"
}
rule "crypto" { if body contains ("bitcoin wallet", "crypto investment", "guaranteed returns") then quarantine "spam" }
rule "big-money" { if body matches /\$\s?\d{1,3}(,\d{3}){2,}/ then add-header "X-Big-Money" "yes" }
rule "shorteners" { if body contains ("bit.ly", "tinyurl.com", "goo.gl") then add-header "X-Shortener" "yes" }
rule "body-blocklist-score" { if body dictionary "blocklist" score >= 5 then quarantine "policy" }
rule "dlp-outbound" {
    if sender domain is "corp.example" and not recipient domain is "corp.example"
       and body dictionary "confidential" score >= 10
    then quarantine "dlp"
}
rule "attachment-dlp" { if attachment text in dictionary "confidential" then quarantine "dlp" }

# --- attachments -------------------------------------------------------------------
rule "executables" {
    if attachment filename matches /\.(exe|scr|com|pif|bat|cmd|js|jse|vbs|vbe|wsf|hta|msi|lnk|iso|img)$/i
    then quarantine "attachments"
}
rule "detected-executables" {
    if attachment detected-type is ("application/x-msdownload", "application/x-executable",
                                    "application/x-ms-shortcut", "application/x-iso9660-image")
    then quarantine "attachments"
}
rule "office-macros" { if attachment filename matches /\.(docm|xlsm|pptm|xlam)$/i then quarantine "attachments" }
rule "double-extension" { if attachment filename matches /\.(pdf|docx?|xlsx?|jpe?g)\.[a-z0-9]{2,4}$/i then quarantine "attachments" }
rule "archives" { if attachment filename matches /\.(rar|7z|ace|arj|cab)$/i then quarantine "attachments" }
rule "pdf-not-pdf" {
    if attachment declared-type is "application/pdf" and attachment detected-type is "application/x-msdownload"
    then quarantine "attachments"
}
rule "attachment-dictionary" { if attachment filename in dictionary "blocklist" then quarantine "attachments" }
rule "too-many-attachments" {
    if attachment count > 20 or attachment size > 20M
    then reject 552 "5.3.4" "Too many or too large attachments"
}

# --- size, session, verdicts ----------------------------------------------------------
rule "too-large" { if size > 30M then reject 552 "5.3.4" "Message too large" }
rule "large-to-lists" { if size > 5M and recipient matches "list-*@corp.example" then reject 552 "5.3.4" "Too large for a list" }
rule "throttled" { if policy is "THROTTLED" and size > 1M then reject 452 "4.3.1" "Try again later" }
rule "partners-need-tls" {
    if sender-group is "PARTNERS" and (not tls or tls version < "1.2")
    then reject 530 "5.7.0" "Must use TLS 1.2 or later"
}
rule "dmarc-reject" { if dmarc is fail and not sender-group is "ALLOWLIST" then reject 550 "5.7.1" "DMARC policy violation" }
rule "spf-fail" { if spf is fail then quarantine "policy" }
rule "spam-certain" { if spam score >= 15 or spam action is "reject" then quarantine "spam" }
rule "spam-suspected" { if spam score >= 5 then prefix-subject "[SUSPECTED SPAM] "; add-header "X-Spam-Flag" "YES" }
rule "virus" { if virus infected then quarantine "virus" }

# --- the one that shows the rules ran: only with blocklist-tag.txt --------------------
rule "body-listed" { if body in dictionary "blocklist" then add-header "X-Postern-Listed" "body" }
'''


def main() -> None:
    out = sys.argv[1]
    rng = random.Random(11)
    msg = message(rng)
    raw = msg.replace("\n", "\r\n").encode()
    assert 9_500 <= len(raw) <= 11_000, len(raw)
    body_words = set(re.findall(r"[a-z0-9]+", msg.lower()))
    assert msg.count(TAG_WORD) == 2
    open(f"{out}/message.eml", "wb").write(raw)
    entries = blocklist(rng, body_words)
    assert len(entries) == ENTRIES and TAG_WORD not in entries
    head = "# generated by scripts/bench/content-data.py\n"
    open(f"{out}/blocklist.txt", "w").write(head + "\n".join(entries) + "\n")
    open(f"{out}/blocklist-tag.txt", "w").write(head + "\n".join(entries[:-1] + [TAG_WORD]) + "\n")
    open(f"{out}/ex-employees.txt", "w").write(
        head + "\n".join(f"{word(rng)}.{word(rng)}@corp.example" for _ in range(200)) + "\n")
    open(f"{out}/partners.txt", "w").write(
        head + "\n".join(f"@{word(rng)}.example" for _ in range(20)) + "\n")
    open(f"{out}/confidential.txt", "w").write(
        head + "\n".join(f"project {word(rng)}, {rng.randrange(1, 10)}" for _ in range(30)) + "\n")
    open(f"{out}/message.rules", "w").write(RULES)
    n = len(re.findall(r'^rule "', RULES, re.M))
    assert n == 50, n
    print(f"message {len(raw)} octets, {ENTRIES} dictionary entries, {n} rules")


if __name__ == "__main__":
    main()
