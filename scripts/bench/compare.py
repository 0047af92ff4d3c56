#!/usr/bin/env python3
"""Side-by-side table of two bench.py results files (medians over reps).

    compare.py A.json B.json      (ratios are A / B; A = Postern, B = Postfix)

Message scenarios: accept msg/s, SUT CPU ms/msg, latency p50/p99 (MAIL FROM to
the 250 after DATA), foreign CPU (other tenants' load during the reps),
failures. e2e (N messages from the start of the load until the sink has them
all, i.e. in → queue → out) is shown only when the SUT delivered every message
to the sink in every rep, with its ratio and the reps. Idle scenarios:
memory per idle connection (sum of PSS, sum of RSS, cgroup anon+kmem), KiB.
"""
import json
import sys


def load(p):
    with open(p) as f:
        r = json.load(f)
    return r["sut"], {s["scenario"]: s for s in r["scenarios"]}


def f(v, nd=0):
    if v is None:
        return "-"
    return f"{v:.{nd}f}"


def ratio(a, b, nd=2):
    if a is None or b is None or b == 0:
        return "-"
    return f"{a / b:.{nd}f}×"


def main():
    fa, A = load(sys.argv[1])
    fb, B = load(sys.argv[2])
    print(f"A = {fa}, B = {fb}; ratio = A / B\n")
    na, nb = "A", "B"
    names = [n for n in A if n in B]
    msg = [n for n in names if A[n]["params"]["kind"] in ("send", "smtp-source")]
    idle = [n for n in names if A[n]["params"]["kind"] == "idle"]
    hs = [n for n in names if A[n]["params"]["kind"] == "handshake"]
    if msg:
        print(f"| scenario | accept msg/s {na} | accept msg/s {nb} | ratio | CPU ms/msg {na} | CPU ms/msg {nb} "
              f"| CPU ratio | p50/p99 ms {na} | p50/p99 ms {nb} | e2e msg/s {na} / {nb} | e2e ratio "
              f"| reps accept {na} | reps accept {nb} | reps e2e {na} | reps e2e {nb} "
              f"| foreign CPU s (median) {na} / {nb} | failures {na} / {nb} |")
        print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
        for n in msg:
            a, b = A[n]["summary"], B[n]["summary"]
            ea = a["e2e_rate"] if a.get("all_complete") else None
            eb = b["e2e_rate"] if b.get("all_complete") else None
            print(f"| {n} | {f(a['accept_rate'])} | {f(b['accept_rate'])} | {ratio(a['accept_rate'], b['accept_rate'])} "
                  f"| {f(a['sut_cpu_ms_per_msg'], 2)} | {f(b['sut_cpu_ms_per_msg'], 2)} "
                  f"| {ratio(a['sut_cpu_ms_per_msg'], b['sut_cpu_ms_per_msg'])} "
                  f"| {f(a['latency_p50_ms'], 1)}/{f(a['latency_p99_ms'], 1)} "
                  f"| {f(b['latency_p50_ms'], 1)}/{f(b['latency_p99_ms'], 1)} "
                  f"| {f(ea) if ea else 'n/a'} / {f(eb) if eb else 'n/a'} | {ratio(ea, eb)} "
                  f"| {a['rates_accept']} | {b['rates_accept']} | {a.get('rates_e2e')} | {b.get('rates_e2e')} "
                  f"| {f(a['foreign_cpu_s'], 1)} / {f(b['foreign_cpu_s'], 1)} | {a['failures']} / {b['failures']} |")
        print()
    if hs:
        print(f"| scenario | conn/s {na} | conn/s {nb} | ratio | CPU ms/conn {na} | CPU ms/conn {nb} |")
        print("|---|---|---|---|---|---|")
        for n in hs:
            a, b = A[n]["summary"], B[n]["summary"]
            print(f"| {n} | {f(a['conn_rate'])} | {f(b['conn_rate'])} | {ratio(a['conn_rate'], b['conn_rate'])} "
                  f"| {f(a['sut_cpu_ms_per_conn'], 2)} | {f(b['sut_cpu_ms_per_conn'], 2)} |")
        print()
    if idle:
        print(f"| scenario | opened {na} / {nb} | KiB/conn PSS {na} | KiB/conn PSS {nb} | KiB/conn RSS {na} "
              f"| KiB/conn RSS {nb} | KiB/conn anon+kmem {na} | KiB/conn anon+kmem {nb} | PSS during MiB {na} / {nb} |")
        print("|---|---|---|---|---|---|---|---|---|")
        for n in idle:
            a, b = A[n]["summary"], B[n]["summary"]
            print(f"| {n} | {f(a['opened'])} / {f(b['opened'])} | {f(a['per_conn_kib_sum_pss'], 1)} "
                  f"| {f(b['per_conn_kib_sum_pss'], 1)} | {f(a['per_conn_kib_sum_rss'], 1)} "
                  f"| {f(b['per_conn_kib_sum_rss'], 1)} | {f(a['per_conn_kib_cg_anon_plus_kmem'], 1)} "
                  f"| {f(b['per_conn_kib_cg_anon_plus_kmem'], 1)} "
                  f"| {f(a['during_sum_pss_mib'], 1)} / {f(b['during_sum_pss_mib'], 1)} |")


if __name__ == "__main__":
    main()
