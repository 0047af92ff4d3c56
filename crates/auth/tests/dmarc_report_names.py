#!/usr/bin/env python3
"""Checks a DMARC aggregate report (XML file given as argv[1]) against the
element names of RFC 7489 Appendix C, plus the elements RFC 9990 adds
(the format mail-auth writes), with Python's own XML parser: an
independent reading of what Postern produces. Prints "ok" or the problems
and exits 1. Used by crates/auth/tests/dmarc_report.rs."""

import ipaddress
import sys
import xml.etree.ElementTree as ET

# RFC 7489 Appendix C paths (below <feedback>).
APPENDIX_C = {
    "version",
    "report_metadata", "report_metadata/org_name", "report_metadata/email",
    "report_metadata/extra_contact_info", "report_metadata/report_id",
    "report_metadata/date_range", "report_metadata/date_range/begin",
    "report_metadata/date_range/end", "report_metadata/error",
    "policy_published", "policy_published/domain", "policy_published/adkim",
    "policy_published/aspf", "policy_published/p", "policy_published/sp",
    "policy_published/pct", "policy_published/fo",
    "record", "record/row", "record/row/source_ip", "record/row/count",
    "record/row/policy_evaluated", "record/row/policy_evaluated/disposition",
    "record/row/policy_evaluated/dkim", "record/row/policy_evaluated/spf",
    "record/row/policy_evaluated/reason", "record/row/policy_evaluated/reason/type",
    "record/row/policy_evaluated/reason/comment",
    "record/identifiers", "record/identifiers/envelope_to",
    "record/identifiers/envelope_from", "record/identifiers/header_from",
    "record/auth_results", "record/auth_results/dkim",
    "record/auth_results/dkim/domain", "record/auth_results/dkim/selector",
    "record/auth_results/dkim/result", "record/auth_results/dkim/human_result",
    "record/auth_results/spf", "record/auth_results/spf/domain",
    "record/auth_results/spf/scope", "record/auth_results/spf/result",
}
# RFC 9990 §3 additions.
RFC9990 = {
    "report_metadata/generator", "policy_published/np",
    "policy_published/testing", "policy_published/discovery_method",
    "record/auth_results/spf/human_result",
}
REQUIRED = [
    "report_metadata/org_name", "report_metadata/email", "report_metadata/report_id",
    "report_metadata/date_range/begin", "report_metadata/date_range/end",
    "policy_published/domain", "policy_published/p", "record/row/source_ip",
    "record/row/count", "record/row/policy_evaluated/disposition",
    "record/row/policy_evaluated/dkim", "record/row/policy_evaluated/spf",
    "record/identifiers/header_from", "record/auth_results/spf",
]


def local(tag):
    return tag.rsplit("}", 1)[-1]


def main(path):
    root = ET.parse(path).getroot()
    problems = []
    if local(root.tag) != "feedback":
        problems.append(f"root is {root.tag}, not feedback")

    def walk(elem, prefix):
        for child in elem:
            p = f"{prefix}/{local(child.tag)}" if prefix else local(child.tag)
            if p not in APPENDIX_C and p not in RFC9990:
                problems.append(f"unknown element {p}")
            walk(child, p)

    walk(root, "")
    ns = root.tag[: root.tag.index("}") + 1] if root.tag.startswith("{") else ""

    def q(path):
        return "/".join(ns + part for part in path.split("/"))

    for req in REQUIRED:
        first = req.split("/")[0]
        for parent in root.findall(q(first)):
            rest = req.split("/", 1)[1]
            if parent.find(q(rest)) is None:
                problems.append(f"missing {req}")
    records = root.findall(q("record"))
    if not records:
        problems.append("no record")
    for rec in records:
        ip = rec.findtext(q("row/source_ip"))
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            problems.append(f"bad source_ip {ip!r}")
        count = rec.findtext(q("row/count"))
        if not (count or "").isdigit() or int(count) < 1:
            problems.append(f"bad count {count!r}")
        pe = "row/policy_evaluated/"
        if rec.findtext(q(pe + "disposition")) not in ("none", "quarantine", "reject"):
            problems.append("bad disposition")
        for w in ("dkim", "spf"):
            if rec.findtext(q(pe + w)) not in ("pass", "fail"):
                problems.append(f"bad policy_evaluated/{w}")
    begin = int(root.findtext(q("report_metadata/date_range/begin")) or 0)
    end = int(root.findtext(q("report_metadata/date_range/end")) or 0)
    if not begin < end:
        problems.append(f"date_range {begin}..{end}")
    if problems:
        print("\n".join(problems))
        return 1
    print(f"ok {len(records)} records")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
