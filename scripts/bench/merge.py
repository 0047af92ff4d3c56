#!/usr/bin/env python3
"""Merge bench.py results files of one SUT (one per scenario) into one file.

    merge.py OUT.json IN1.json [IN2.json ...]

Missing inputs are skipped (a scenario that failed to run). The first input's
sut/host/args are kept; args.scenarios becomes the merged list.
"""
import json
import os
import sys


def main():
    out, ins = sys.argv[1], [p for p in sys.argv[2:] if os.path.exists(p)]
    if not ins:
        sys.exit("merge.py: no input files")
    merged = None
    for p in ins:
        with open(p) as f:
            r = json.load(f)
        if merged is None:
            merged = dict(r, scenarios=[], parts=[])
        merged["scenarios"].extend(r["scenarios"])
        merged["parts"].append({"file": os.path.basename(p), "started": r.get("started"),
                                "finished": r.get("finished")})
        merged["finished"] = r.get("finished")
    merged["args"]["scenarios"] = ",".join(s["scenario"] for s in merged["scenarios"])
    with open(out, "w") as f:
        json.dump(merged, f, indent=1)


if __name__ == "__main__":
    main()
