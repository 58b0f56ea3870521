#!/usr/bin/env python3
"""promcheck.py: a strict checker of the Prometheus text exposition format
(version 0.0.4) plus chatmi's naming conventions.

    promcheck.py [--prefix chatmi_gateway_] FILE     exit 0 when FILE is fine
    promcheck.py --names FILE                         also print every family

Checks, beyond the grammar (metric and label names, quoted label values with
their three escapes, float values including +Inf/-Inf/NaN, optional integer
timestamps):
  - every family has exactly one HELP and one TYPE line, before its samples,
    and its samples are consecutive (no family split in two);
  - no sample (name and label set) appears twice, no label twice in a sample;
  - counters are named *_total, gauges are not, counter values are >= 0;
  - histograms: only _bucket/_sum/_count samples, an `le` label on every
    bucket, bucket bounds increasing and counts non-decreasing within each
    label set, a +Inf bucket equal to _count; names end in a unit
    (_seconds, _bytes);
  - with --prefix, every family starts with it;
  - the text ends with a newline.
The first problem found is printed with its line number; exit status 1.
"""
import math
import re
import sys

NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
TYPES = {"counter", "gauge", "histogram", "summary", "untyped"}


class Bad(Exception):
    pass


def parse_value(s, what):
    if s in ("+Inf", "Inf"):
        return math.inf
    if s == "-Inf":
        return -math.inf
    if s == "NaN":
        return math.nan
    if not re.fullmatch(r"[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?", s):
        raise Bad("%s is not a number: %r" % (what, s))
    return float(s)


def parse_labels(s, i):
    """s[i] is '{'. Returns (labels dict, index after '}')."""
    labels = {}
    i += 1
    while True:
        if i >= len(s):
            raise Bad("unterminated label set")
        if s[i] == "}":
            return labels, i + 1
        m = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*").match(s, i)
        if not m:
            raise Bad("bad label name at column %d" % (i + 1))
        name = m.group(0)
        i = m.end()
        if s[i:i + 2] != '="':
            raise Bad("label %s: expected =\"" % name)
        i += 2
        val = []
        while True:
            if i >= len(s):
                raise Bad("label %s: unterminated value" % name)
            c = s[i]
            if c == "\\":
                nxt = s[i + 1:i + 2]
                if nxt not in ("\\", '"', "n"):
                    raise Bad("label %s: bad escape \\%s" % (name, nxt))
                val.append("\n" if nxt == "n" else nxt)
                i += 2
            elif c == '"':
                i += 1
                break
            elif c == "\n":
                raise Bad("label %s: newline in value" % name)
            else:
                val.append(c)
                i += 1
        if name in labels:
            raise Bad("label %s twice" % name)
        labels[name] = "".join(val)
        if i < len(s) and s[i] == ",":
            i += 1
        elif i < len(s) and s[i] != "}":
            raise Bad("expected , or } after label %s" % name)


def family_of(name, types):
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix):
            base = name[: -len(suffix)]
            if types.get(base) in ("histogram", "summary"):
                return base
    return name


def check(text, prefix=None):
    if text and not text.endswith("\n"):
        raise Bad("the text does not end with a newline")
    helps, types = {}, {}
    seen_samples = set()
    done_families = set()
    current = None
    samples = {}  # family -> list of (name, labels, value)
    for lineno, line in enumerate(text.split("\n")[:-1] if text else [], 1):
        try:
            if line.startswith("#"):
                parts = line.split(" ", 3)
                if len(parts) >= 2 and parts[1] in ("HELP", "TYPE"):
                    if len(parts) < 4 or not parts[3]:
                        raise Bad("%s line without a name and text" % parts[1])
                    name = parts[2]
                    if not NAME.match(name):
                        raise Bad("bad metric name %r" % name)
                    if name in done_families or (current == name and name in samples):
                        raise Bad("%s of %s after its samples" % (parts[1], name))
                    table = helps if parts[1] == "HELP" else types
                    if name in table:
                        raise Bad("second %s line for %s" % (parts[1], name))
                    if parts[1] == "TYPE" and parts[3] not in TYPES:
                        raise Bad("unknown type %r" % parts[3])
                    table[name] = parts[3]
                    if current is not None and current != name:
                        done_families.add(current)
                    current = name
                continue
            if not line.strip():
                raise Bad("blank line")
            m = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*").match(line)
            if not m:
                raise Bad("a sample must start with a metric name")
            name = m.group(0)
            i = m.end()
            labels = {}
            if i < len(line) and line[i] == "{":
                labels, i = parse_labels(line, i)
            if line[i:i + 1] != " ":
                raise Bad("expected one space before the value")
            rest = line[i + 1:].split(" ")
            if len(rest) not in (1, 2) or "" in rest:
                raise Bad("expected `value [timestamp]`")
            value = parse_value(rest[0], "value")
            if len(rest) == 2 and not re.fullmatch(r"-?\d+", rest[1]):
                raise Bad("bad timestamp %r" % rest[1])
            fam = family_of(name, types)
            if fam in done_families:
                raise Bad("samples of %s are not consecutive" % fam)
            if current is not None and current != fam:
                done_families.add(current)
            current = fam
            if fam not in types:
                raise Bad("sample %s without a TYPE line" % name)
            if fam not in helps:
                raise Bad("sample %s without a HELP line" % name)
            key = (name, tuple(sorted(labels.items())))
            if key in seen_samples:
                raise Bad("duplicate sample %s%s" % (name, labels))
            seen_samples.add(key)
            samples.setdefault(fam, []).append((name, labels, value))
        except Bad as e:
            raise Bad("line %d: %s: %s" % (lineno, e, line))

    for fam, t in types.items():
        where = "family %s" % fam
        if prefix and not fam.startswith(prefix):
            raise Bad("%s does not start with %s" % (where, prefix))
        if fam not in helps:
            raise Bad("%s has a TYPE but no HELP" % where)
        rows = samples.get(fam, [])
        if t == "counter":
            if not fam.endswith("_total"):
                raise Bad("%s: counters are named *_total" % where)
            for name, labels, v in rows:
                if name != fam:
                    raise Bad("%s: sample %s" % (where, name))
                if not v >= 0:
                    raise Bad("%s: negative or NaN counter %s%s = %r" % (where, name, labels, v))
        elif t == "gauge":
            if fam.endswith("_total"):
                raise Bad("%s: a gauge must not be named *_total" % where)
            for name, _, _ in rows:
                if name != fam:
                    raise Bad("%s: sample %s" % (where, name))
        elif t == "histogram":
            if not (fam.endswith("_seconds") or fam.endswith("_bytes")):
                raise Bad("%s: histogram names end in their unit (_seconds, _bytes)" % where)
            check_histogram(fam, rows)
    return sorted(types)


def check_histogram(fam, rows):
    series = {}
    for name, labels, v in rows:
        rest = {k: x for k, x in labels.items() if k != "le"}
        key = tuple(sorted(rest.items()))
        s = series.setdefault(key, {"buckets": [], "sum": None, "count": None})
        if name == fam + "_bucket":
            if "le" not in labels:
                raise Bad("%s: bucket without le %s" % (fam, labels))
            s["buckets"].append((parse_value(labels["le"], "le"), v))
        elif name == fam + "_sum":
            s["sum"] = v
        elif name == fam + "_count":
            s["count"] = v
        else:
            raise Bad("%s: unexpected sample %s" % (fam, name))
    if not series:
        raise Bad("histogram %s has no samples" % fam)
    for key, s in series.items():
        b = s["buckets"]
        if not b or b[-1][0] != math.inf:
            raise Bad("%s%s: the last bucket must be le=\"+Inf\"" % (fam, dict(key)))
        for (le1, c1), (le2, c2) in zip(b, b[1:]):
            if not le2 > le1:
                raise Bad("%s%s: bucket bounds not increasing (%r, %r)" % (fam, dict(key), le1, le2))
            if c2 < c1:
                raise Bad("%s%s: bucket counts decrease (%r, %r)" % (fam, dict(key), c1, c2))
        if s["count"] is None or s["sum"] is None:
            raise Bad("%s%s: _sum or _count missing" % (fam, dict(key)))
        if b[-1][1] != s["count"]:
            raise Bad("%s%s: +Inf bucket %r != _count %r" % (fam, dict(key), b[-1][1], s["count"]))


def main(argv):
    prefix, names, path = None, False, None
    args = argv[1:]
    while args:
        a = args.pop(0)
        if a == "--prefix":
            prefix = args.pop(0)
        elif a == "--names":
            names = True
        else:
            path = a
    if path is None:
        print(__doc__, file=sys.stderr)
        return 2
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        fams = check(text, prefix)
    except Bad as e:
        print("promcheck: %s: %s" % (path, e), file=sys.stderr)
        return 1
    if names:
        for f in fams:
            print(f)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
