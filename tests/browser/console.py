#!/usr/bin/env python3
"""Drives Postern's web console in a real headless Chromium (Debian `chromium`,
PyPI `playwright`; never `playwright install`: it downloads browsers).

    python3 tests/browser/console.py --base http://127.0.0.1:8025 \
        --user admin --password secret [--queue-id ID] [--recipient ADDR] \
        [--hostile] [--insecure] [--screenshots DIR]

Works against any running console (a test router, or `postern serve`):

1. keyboard-only login (Tab / typing / Enter, no clicks), then the skip link
   is the first thing Tab reaches;
2. the dashboard renders (alerts, messages per minute, queue, TLS mix);
3. with --recipient: tracking search by recipient, open the message's
   timeline, see its TLS evidence;
4. with --queue-id (else the first queued message, if any): hold it with
   JavaScript (htmx dialog accepted), release it without JavaScript (the
   confirmation page), the status message saying what happened each time;
5. the TLS posture page, both tabs;
6. every page: each visible form field has a label, one <h1>, a <main>;
7. with --hostile: mail text with bidi overrides and controls shows as
   U+FFFD on the queue, quarantine, tracking and posture pages;
8. Swagger UI at /api/docs lists the API's operations, and "Try it out" on
   whoami answers with the login session;
9. log out; the dashboard then sends the browser back to the login page.

Prints one line per step and exits 0 when all passed, 1 on the first failure
(with the page's URL and text), 2 when Chromium or Playwright is missing.
"""

import argparse
import os
import re
import sys
from urllib.parse import quote

CHROMIUM = os.environ.get("POSTERN_CHROMIUM", "/usr/bin/chromium")

try:
    from playwright.sync_api import sync_playwright
except ImportError:
    print("skipped: playwright (PyPI) not installed", file=sys.stderr)
    sys.exit(2)


class Failed(Exception):
    pass


def check(cond, what, page=None):
    if not cond:
        where = ""
        if page is not None:
            body = page.inner_text("body")[:2000]
            where = f"\n  at {page.url}\n  page text:\n{body}"
        raise Failed(f"{what}{where}")


def h1(page):
    """The page's <h1> text, or "" when it has none (no waiting)."""
    loc = page.locator("h1")
    return loc.first.inner_text().strip() if loc.count() else ""


def step(text):
    print(f"ok: {text}", flush=True)


def landmarks_and_labels(page, name):
    """Every visible field is labelled; one h1; a main landmark."""
    unlabelled = page.evaluate(
        """() => Array.from(document.querySelectorAll(
              'input:not([type=hidden]), select, textarea'))
            .filter(el => el.labels === null || el.labels.length === 0)
            .map(el => el.name || el.id)"""
    )
    check(not unlabelled, f"{name}: fields without a <label>: {unlabelled}", page)
    check(page.locator("h1").count() == 1, f"{name}: exactly one <h1>", page)
    check(page.locator("main").count() == 1, f"{name}: a <main> landmark", page)


def login_with_keyboard(page, base, user, password):
    page.goto(f"{base}/login")
    check(h1(page) == "Log in", "login page shows", page)
    landmarks_and_labels(page, "login")
    # The user field has autofocus; if not, Tab until it has focus.
    for _ in range(6):
        if page.evaluate("() => document.activeElement && document.activeElement.name") == "user":
            break
        page.keyboard.press("Tab")
    check(
        page.evaluate("() => document.activeElement.name") == "user",
        "the keyboard reaches the user name field",
        page,
    )
    page.keyboard.type(user)
    page.keyboard.press("Tab")
    check(
        page.evaluate("() => document.activeElement.name") == "password",
        "Tab moves to the password field",
        page,
    )
    page.keyboard.type(password)
    with page.expect_navigation():
        page.keyboard.press("Enter")
    check(
        h1(page) == "Dashboard",
        "keyboard-only login lands on the dashboard",
        page,
    )
    step("keyboard-only login")
    # The first Tab stop is the skip link, and it leads to <main>.
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement.textContent.trim()")
    check(focused == "Skip to content", f"first Tab stop is the skip link (got {focused!r})", page)
    step("skip link is the first Tab stop")


def dashboard(page, base):
    page.goto(f"{base}/")
    for heading in ("Alerts", "Messages per minute", "Queue", "TLS version mix",
                    "Top causes of failure", "Certificate expiry"):
        check(page.get_by_role("heading", name=heading).count() >= 1,
              f"dashboard has the section {heading!r}", page)
    landmarks_and_labels(page, "dashboard")
    step("dashboard renders")


def track(page, base, recipient):
    page.goto(f"{base}/track")
    landmarks_and_labels(page, "tracking search")
    page.get_by_label("Recipient").fill(recipient)
    with page.expect_navigation():
        page.get_by_role("button", name="Search").click()
    rows = page.locator("table tbody tr")
    check(rows.count() >= 1, f"tracking search finds events for {recipient}", page)
    link = page.locator("table tbody tr a.mono").first
    qid = link.inner_text().strip()
    step(f"tracking search by recipient found {rows.count()} event(s), first message {qid}")
    with page.expect_navigation():
        link.click()
    check(qid in h1(page), "the timeline of that message opens", page)
    check(page.get_by_role("heading", name="Transport security evidence").count() == 1,
          "the timeline shows its TLS evidence", page)
    text = page.inner_text("main")
    check("TLS version" in text or "plaintext" in text,
          "the evidence says which TLS (or plaintext) each hop used", page)
    check(page.get_by_role("link", name=re.compile("Export the TLS evidence")).count() == 1,
          "the JSON export link is there", page)
    landmarks_and_labels(page, "timeline")
    step("timeline with TLS evidence")
    return page.url


def first_queued(page, base):
    page.goto(f"{base}/queue")
    links = page.locator("table tbody tr th a")
    return links.first.inner_text().strip() if links.count() else None


def hold_and_release(browser, context, page, base, qid, insecure):
    # Hold, with JavaScript: htmx asks with a dialog; accept it.
    page.goto(f"{base}/queue/{quote(qid)}")
    landmarks_and_labels(page, "message")
    dialogs = []

    def accept(d):
        dialogs.append(d.message)
        d.accept()

    page.once("dialog", accept)
    page.get_by_role("button", name="Hold").click()
    status = page.get_by_role("status")
    status.wait_for(timeout=10000)
    check(dialogs and qid in dialogs[0], f"htmx asked for confirmation ({dialogs})", page)
    check(f"held {qid}" in status.inner_text(), "the status says the message is held", page)
    check(page.get_by_role("button", name="Release").count() == 1,
          "a held message offers Release", page)
    step(f"hold {qid} (JavaScript: dialog confirmation)")

    # Release, without JavaScript: the confirmation page.
    nojs = browser.new_context(java_script_enabled=False,
                               ignore_https_errors=insecure)
    try:
        nojs.add_cookies(context.cookies())
        p2 = nojs.new_page()
        p2.goto(f"{base}/queue/{quote(qid)}")
        with p2.expect_navigation():
            p2.get_by_role("button", name="Release").click()
        check(h1(p2).startswith("Confirm: release"),
              "without JavaScript a confirmation page comes first", p2)
        check(p2.get_by_role("status").count() == 0, "nothing happened yet", p2)
        landmarks_and_labels(p2, "confirmation")
        with p2.expect_navigation():
            p2.get_by_role("button", name=re.compile("^Yes, release")).click()
        status = p2.get_by_role("status")
        check(status.count() == 1 and f"released {qid}" in status.inner_text(),
              "the status says the message is released", p2)
        step(f"release {qid} (no JavaScript: confirmation page)")
    finally:
        nojs.close()


def posture(page, base):
    page.goto(f"{base}/posture")
    check(h1(page) == "TLS posture", "posture page opens", page)
    landmarks_and_labels(page, "posture")
    with page.expect_navigation():
        page.get_by_role("link", name=re.compile("^Inbound")).click()
    check(page.get_by_role("link", name=re.compile("^Inbound")).get_attribute("aria-current") == "page",
          "the inbound tab is current after a click", page)
    step("TLS posture, both tabs")


def api_docs(page, base):
    """Swagger UI at /api/docs renders every operation of the OpenAPI
    document from the vendored bundle, and "Try it out" on whoami answers
    with the session (no CDN, no inline script: the CSP holds)."""
    page.goto(f"{base}/api/docs")
    page.wait_for_selector(".swagger-ui .opblock", timeout=20000)
    check("Postern admin API" in page.inner_text(".swagger-ui .info"), "the API's title", page)
    n = page.locator(".swagger-ui .opblock").count()
    check(n >= 20, f"every operation listed ({n})", page)
    op = page.locator("#operations-auth-whoami")
    op.locator(".opblock-summary").first.click()
    op.get_by_role("button", name="Try it out").click()
    op.get_by_role("button", name="Execute").click()
    body = op.locator(".responses-wrapper .live-responses-table .response-col_description pre").first
    body.wait_for(timeout=10000)
    check('"via"' in body.inner_text() and "session" in body.inner_text(),
          "Try it out answers with the session", page)
    step(f"Swagger UI at /api/docs: {n} operations, Try it out with the session")


HIDDEN = re.compile("[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f"
                    "\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]")


def hostile_text(page, base):
    """Mail text carrying RLO, LRI, PDI, BEL, ESC and NUL (the test seeds it)
    reaches the rendered pages only as U+FFFD: nothing reorders or hides what
    the operator reads."""
    for path in ["/queue", "/quarantine", "/track?event=rejected", "/posture?direction=inbound"]:
        page.goto(f"{base}{path}")
        text = page.inner_text("main")
        bad = HIDDEN.search(text)
        check(bad is None, f"{path}: {bad.group(0)!r} reached the page" if bad else "", page)
        check("inv\ufffdfdp.exe" in text, f"{path}: the hostile text shown with U+FFFD", page)
    step("hostile text shown with U+FFFD, no bidi override or control character")


def logout(page, base):
    page.goto(f"{base}/")
    with page.expect_navigation():
        page.get_by_role("button", name="Log out").click()
    check("/login" in page.url, "logging out shows the login page", page)
    page.goto(f"{base}/")
    check("/login" in page.url, "after logout the dashboard needs a login again", page)
    step("log out")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--base", required=True, help="e.g. http://127.0.0.1:8025")
    ap.add_argument("--user", required=True)
    ap.add_argument("--password", required=True)
    ap.add_argument("--queue-id", help="a queued message to hold and release")
    ap.add_argument("--recipient", help="a recipient to find in tracking")
    ap.add_argument("--hostile", action="store_true",
                    help="the server holds mail with bidi overrides and controls (the test's seed)")
    ap.add_argument("--screenshots", help="directory for a screenshot of each page")
    ap.add_argument("--insecure", action="store_true",
                    help="accept any TLS certificate (an https:// base with a test certificate)")
    args = ap.parse_args()
    base = args.base.rstrip("/")
    if not os.path.exists(CHROMIUM):
        print(f"skipped: chromium not installed ({CHROMIUM})", file=sys.stderr)
        return 2
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"], headless=True)
        try:
            context = browser.new_context(ignore_https_errors=args.insecure)
            page = context.new_page()
            errors = []
            extra = []
            page.on("console", lambda m: errors.append(f"{m.text} ({m.location.get('url', '')})")
                    if m.type == "error" else None)
            login_with_keyboard(page, base, args.user, args.password)
            dashboard(page, base)
            if args.recipient:
                extra.append(track(page, base, args.recipient))
            else:
                print("skipped: tracking search (no --recipient)")
            qid = args.queue_id or first_queued(page, base)
            if qid:
                extra.append(f"{base}/queue/{quote(qid)}")
            if qid:
                hold_and_release(browser, context, page, base, qid, args.insecure)
            else:
                print("skipped: hold and release (no --queue-id and the queue is empty)")
            posture(page, base)
            if args.hostile:
                hostile_text(page, base)
            api_docs(page, base)
            if args.screenshots:
                os.makedirs(args.screenshots, exist_ok=True)
                paths = ["/", "/queue", "/track", "/posture", "/config", "/api/docs"]
                for url in [f"{base}{p}" for p in paths] + extra:
                    page.goto(url)
                    name = re.sub(r"[^a-z0-9]+", "-", url[len(base):].lower()).strip("-")
                    page.screenshot(path=os.path.join(args.screenshots, f"{name or 'dashboard'}.png"),
                                    full_page=True)
            check(not errors, f"no console errors (CSP violations, script errors): {errors}")
            step("no console errors")
            logout(page, base)
        except Failed as e:
            print(f"FAILED: {e}", file=sys.stderr)
            return 1
        except Exception as e:  # a Playwright timeout or error: say where
            print(f"FAILED: {type(e).__name__}: {e}", file=sys.stderr)
            for p in context.pages:
                print(f"  page {p.url}:\n{p.content()[:3000]}", file=sys.stderr)
            return 1
        finally:
            browser.close()
    print("all console checks passed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
