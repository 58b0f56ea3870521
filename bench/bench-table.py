#!/usr/bin/python3
"""bench-table.py DIR [--out FILE] [--no-write]: the results table of a
run-bench.sh run, from the chatmi-bench JSON files and meta.json in DIR.

meta.json holds what the JSON files do not: the machine, the commit, the
load average before and after, which runs were done and which failed. The
table goes to stdout, and into FILE (docs/benchmarks.md) between the
bench:results markers, the rest of the page left as it is."""
import json
import os
import sys

BEGIN, END = "<!-- bench:results:begin -->", "<!-- bench:results:end -->"


def g(d, *path, default=None):
    for p in path:
        if not isinstance(d, dict) or p not in d:
            return default
        d = d[p]
    return d


def num(v, fmt="{:,.0f}"):
    return "–" if v is None else fmt.format(v)


def ms(v):
    if v is None:
        return "–"
    return "{:.2f}".format(v) if v < 10 else "{:.1f}".format(v) if v < 100 else "{:,.0f}".format(v)


def kib(v):
    return "–" if v is None else "{:.2f} KiB".format(v / 1024)


def worker_round_trips(tmp, name):
    """Round trips per request over the whole run: the gateway's RPUSH (one
    per request) plus the worker's round trips (its own counter, scraped
    from --metrics-listen at the end) per request it took."""
    path = os.path.join(tmp, name + ".worker.prom")
    if not os.path.exists(path):
        return None
    v = {}
    for line in open(path):
        for key in ("chatmi_worker_redis_round_trips_total", "chatmi_worker_requests_total"):
            if line.startswith(key + " "):
                v[key] = float(line.split()[1])
    reqs = v.get("chatmi_worker_requests_total", 0)
    if not reqs or "chatmi_worker_redis_round_trips_total" not in v:
        return None
    return 1.0 + v["chatmi_worker_redis_round_trips_total"] / reqs


def render(meta, R):
    runs = [n for n in meta["runs"] if n in R]
    out = []
    w = out.append
    w("Machine: {cpu} ({cores} cores, {mem} RAM), Linux {kernel}; Redis {redis}; descriptor limit {nofile}. "
      "Commit {commit}, {date}. Loopback, everything on one box. The suite took {elapsed} s.".format(**meta))
    w("")
    busy = float(meta["load_before"].split()[0]) > 0.5
    w("Load average before the run: {} (1, 5, 15 min){}; after: {}.".format(
        meta["load_before"],
        ": **other work was running on the machine**, so CPU-bound figures are pessimistic" if busy
        else ", the machine was otherwise quiet", meta["load_after"]))
    if meta.get("failed"):
        w("")
        w("**Runs that failed (no figures): {}.**".format(", ".join(meta["failed"])))
    if meta.get("quick"):
        w("")
        w("**Quick run: every scenario at 1/25 of its size.**")
    w("")

    idle = [n for n in runs if n.startswith("idle")]
    if idle:
        w("### Idle connections (gateway with {} children)".format(meta["idle_children"]))
        w("")
        w("| connections | connects/s | handshake failures | connect→hello p50 ms | p99 | gateway RSS | RSS/conn | "
          "PSS/conn | kernel slab/conn (both ends) | spread across children | gateway CPU holding | bench RSS/conn |")
        w("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in idle:
            d = R[n]
            gw = d.get("gateway", {})
            conns = g(d, "connect", "connected") or 0
            w("| {} | {} | {} | {} | {} | {} | {} | {} | {} | ±{:.1f} % | {:.1f} % | {} |".format(
                num(conns), num(g(d, "connect", "connects_per_s")), num(g(d, "connect", "handshake_failures")),
                ms(g(d, "connect", "connect_to_hello_ms", "p50")), ms(g(d, "connect", "connect_to_hello_ms", "p99")),
                "{:.1f} MiB".format(gw.get("rss_bytes", 0) / 1048576), kib(gw.get("rss_per_connection")),
                kib(gw.get("pss_per_connection")), kib(g(d, "kernel", "slab_bytes_per_connection")),
                gw.get("child_spread_pct", 0), gw.get("cpu_pct", 0),
                kib(g(d, "bench", "max_rss_bytes", default=0) / conns if conns else None)))
        w("")

    msg = [n for n in runs if n.startswith("room") or n.startswith("dm")]
    if msg:
        w("### Messages")
        w("")
        w("| run | connections | sent/s | acked | delivered / expected | deliveries/s | p50 ms | p90 | p99 | p99.9 | "
          "max | ack p99 ms | resyncs | gateway CPU | deliveries per gateway CPU-s | worker CPU/msg | "
          "Redis cmds/msg | Redis round trips/request | Redis CPU/msg | bench CPU (busiest process) | "
          "bench tick lag p99 ms |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | "
          "---: | ---: | ---: | ---: | ---: | ---: |")
        for n in msg:
            d = R[n]
            m = d.get("messages", {})
            lat = m.get("latency_ms", {})
            exp = m.get("expected", 0) or 0
            dl = m.get("delivered", 0)
            rt = R[n].get("_round_trips")
            w("| {} | {} | {} | {} | {} / {} ({:.1f} %) | {} | {} | {} | {} | {} | {} | {} | {} | {:.0f} % | {} | {} | {} | {} "
              "| {} | {:.0f} % ({:.0f} %) | {} |".format(
                  n, num(d.get("connections")), num(m.get("sends_per_s")), num(m.get("acked")), num(dl), num(exp),
                  100.0 * dl / exp if exp else 0, num(m.get("deliveries_per_s")), ms(lat.get("p50")),
                  ms(lat.get("p90")), ms(lat.get("p99")), ms(lat.get("p99.9")), ms(lat.get("max")),
                  ms(g(m, "ack_latency_ms", "p99")), num(g(d, "bench", "resyncs")),
                  g(d, "gateway", "cpu_pct", default=0), num(g(d, "gateway", "deliveries_per_cpu_s")),
                  num(g(d, "worker", "cpu_us_per_request"), "{:,.0f} µs"),
                  num(g(d, "redis", "commands_per_request"), "{:,.1f}"),
                  num(rt, "{:,.2f}") if rt is not None else "–",
                  num(g(d, "redis", "cpu_us_per_request"), "{:,.0f} µs"),
                  g(d, "bench", "cpu_pct", default=0), g(d, "bench", "cpu_pct_busiest_process", default=0),
                  ms(g(d, "bench", "tick_lateness_ms", "p99"))
                  + (" ⚠ short of CPU" if g(d, "bench", "short_of_cpu") else "")))
        w("")
        w("Redis commands per acked message, by command (commands run inside Lua scripts included):")
        w("")
        for n in msg:
            per = g(R[n], "redis", "per_request", default={}) or {}
            w("- {}: {}".format(n, ", ".join("{} {:,.2f}".format(k, v) for k, v in per.items()) or "–"))
        w("")

    storm = [n for n in runs if n.startswith("storm")]
    if storm:
        w("### Reconnect storm")
        w("")
        w("| run | clients | window | missed each | reconnected | reconnects/s | handshake failures | connect→hello p99 ms | "
          "recovered clients | recovered messages / expected | all recovered after | recovery p50 ms | p99 | max | "
          "gateway CPU | Redis cmds/request |")
        w("| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
        for n in storm:
            d = R[n]
            s = d.get("storm", {})
            rec = s.get("recovery_ms", {})
            w("| {} | {} | {:.0f} s | {} | {} | {} | {} | {} | {} | {} / {} | {:.2f} s | {} | {} | {} | {:.0f} % | {} |".format(
                n, num(s.get("clients")), s.get("window_s", 0), s.get("missed_each"), num(s.get("reconnected")),
                num(s.get("connects_per_s")), num(g(d, "connect", "handshake_failures")),
                ms(g(d, "connect", "connect_to_hello_ms", "p99")), num(s.get("recovered_clients")),
                num(s.get("recovered_messages")), num(s.get("expected_messages")), s.get("all_recovered_s", 0),
                ms(rec.get("p50")), ms(rec.get("p99")), ms(rec.get("max")), g(d, "gateway", "cpu_pct", default=0),
                num(g(d, "redis", "commands_per_request"), "{:.1f}")))
        w("")
    return "\n".join(out)


def main(argv):
    if not argv or argv[0].startswith("-"):
        sys.exit(__doc__)
    tmp, out, write = argv[0], None, True
    i = 1
    while i < len(argv):
        if argv[i] == "--out":
            out = argv[i + 1]
            i += 2
        elif argv[i] == "--no-write":
            write = False
            i += 1
        else:
            sys.exit("bench-table.py: unknown argument " + argv[i])
    meta = json.load(open(os.path.join(tmp, "meta.json")))
    R = {}
    for n in meta["runs"]:
        path = os.path.join(tmp, n + ".json")
        if os.path.exists(path):
            R[n] = json.load(open(path))
            R[n]["_round_trips"] = worker_round_trips(tmp, n)
    table = render(meta, R)
    print(table)
    if write and out:
        page = open(out).read() if os.path.exists(out) else "# Benchmarks\n\n{}\n{}\n".format(BEGIN, END)
        if BEGIN not in page or END not in page:
            page = page.rstrip("\n") + "\n\n{}\n{}\n".format(BEGIN, END)
        a, rest = page.split(BEGIN, 1)
        _, b = rest.split(END, 1)
        with open(out, "w") as f:
            f.write(a + BEGIN + "\n" + table + "\n" + END + b)
        print("\nrun-bench: results written to {}".format(out))


if __name__ == "__main__":
    main(sys.argv[1:])
