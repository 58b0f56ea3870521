#!/usr/bin/env python3
"""check-dashboard.py: the Grafana dashboard queries only metrics chatmi has.

    check-dashboard.py DASHBOARD.json --source TOP_SRCDIR
        names from the exposition code (gateway/metrics.c, worker/metrics.c)
    check-dashboard.py DASHBOARD.json --exposition FILE [FILE...]
        names from live scrapes (the integration test passes them)

Checks that the JSON parses as a dashboard (uid, title, panels each with a
title and at least one target), that every target uses the provisioned
Prometheus data source (uid chatmi-prometheus), and that every chatmi_*
metric name in a query is exposed (a histogram's _bucket/_sum/_count count
as its name). Prints what it checked; exit 1 on the first problem.
"""
import json
import re
import sys

DS_UID = "chatmi-prometheus"
METRIC = re.compile(r"\bchatmi_[a-z0-9_]+\b")


def names_from_source(top):
    names = set()
    for rel in ("gateway/metrics.c", "worker/metrics.c"):
        with open("%s/%s" % (top, rel), encoding="utf-8") as f:
            names |= set(re.findall(r'"(chatmi_(?:gateway|worker)_[a-z0-9_]+)', f.read()))
    return names


def names_from_expositions(paths):
    names = set()
    for p in paths:
        with open(p, encoding="utf-8") as f:
            for line in f:
                m = re.match(r"# TYPE (\S+) (\S+)", line)
                if m:
                    names.add(m.group(1))
    return names


def known(name, names):
    if name in names:
        return True
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name[: -len(suffix)] in names:
            return True
    return False


def main(argv):
    if len(argv) < 4 or argv[2] not in ("--source", "--exposition"):
        print(__doc__, file=sys.stderr)
        return 2
    names = names_from_source(argv[3]) if argv[2] == "--source" else names_from_expositions(argv[3:])
    if not names:
        print("check-dashboard: no metric names found", file=sys.stderr)
        return 1
    try:
        with open(argv[1], encoding="utf-8") as f:
            dash = json.load(f)
    except (OSError, ValueError) as e:
        print("check-dashboard: %s: %s" % (argv[1], e), file=sys.stderr)
        return 1
    problems = []
    if not dash.get("uid") or not dash.get("title") or not dash.get("panels"):
        problems.append("a dashboard needs uid, title and panels")
    used = set()
    for p in dash.get("panels", []):
        title = p.get("title") or "(untitled panel)"
        if not p.get("title"):
            problems.append("a panel without a title")
        targets = p.get("targets") or []
        if not targets:
            problems.append("%s: no query" % title)
        for t in targets:
            uid = (t.get("datasource") or p.get("datasource") or {}).get("uid")
            if uid != DS_UID:
                problems.append("%s: data source %r, not the provisioned %s" % (title, uid, DS_UID))
            expr = t.get("expr", "")
            found = METRIC.findall(expr)
            if not found:
                problems.append("%s: query without a chatmi metric: %s" % (title, expr))
            for name in found:
                used.add(name)
                if not known(name, names):
                    problems.append("%s: %s is not exposed by chatmi" % (title, name))
    if problems:
        for p in problems:
            print("check-dashboard: %s" % p, file=sys.stderr)
        return 1
    print("check-dashboard: %d panels, %d metric names, all exposed" % (len(dash["panels"]), len(used)))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
