#!/usr/bin/env python3
"""Turn compare-aptly.sh's raw results.tsv into the markdown report of one case.

results.tsv lines: tool <TAB> kind <TAB> round <TAB> key <TAB> value
  tool: mini-mirror | aptly | link;  kind: cold | warm (link: direct | proxy)
  keys: wall (s), rss_kb, bytes, requests, packages, signed, summary, error,
        phase:<name> (s), phase_rss:<name> (kB); link: url, sample ("<bytes> <seconds>")

Usage: report.py RESULTS CASE ROUNDS PKGS_MINI_MIRROR PKGS_APTLY FILTER
"""
import os
import statistics
import sys
from collections import defaultdict

TOOLS = ("mini-mirror", "aptly")


def load(path):
    data = defaultdict(list)  # (tool, kind, key) -> [values in round order]
    with open(path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) != 5:
                continue
            tool, kind, _round, key, value = parts
            data[(tool, kind, key)].append(value)
    return data


def nums(data, tool, kind, key):
    out = []
    for v in data.get((tool, kind, key), []):
        try:
            out.append(float(v))
        except ValueError:
            pass
    return out


def med(values):
    return statistics.median(values) if values else None


def fmt_s(v):
    return "—" if v is None else f"{v:.2f}"


def fmt_spread(values):
    """median, and min–max when there are several rounds"""
    if not values:
        return "—"
    m = med(values)
    if len(values) > 1:
        return f"{m:.2f} ({min(values):.2f}–{max(values):.2f})"
    return f"{m:.2f}"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return "—"
    return f"{a / b:.2f}"


def mb(v):
    return "—" if v is None else f"{v / 1e6:.2f}"


def mib_kb(v):
    return "—" if v is None else f"{v / 1024:.0f}"


def main():
    results, case, rounds, pk_mm, pk_ap, filt = sys.argv[1:7]
    d = load(results)
    out = []
    w = out.append
    w(f"{rounds} round(s); figures are medians over rounds (min–max in brackets). "
      "Wall time of aptly = sum of its sub-commands; peak RSS of aptly = max over them. "
      "Bytes = HTTP body bytes through the counting proxy (MB = 10^6 bytes).\n")
    if len(filt) > 400:  # the scale case names thousands of packages
        n = filt.count(" | ") + 1
        filt = f"{filt[:200]} | … ({n} alternatives; the case's packages.txt joined by ' | ')"
    w(f"aptly filter: `{filt}`\n")

    w("| figure | mini-mirror | aptly | mini-mirror / aptly |")
    w("|---|---:|---:|---:|")
    for kind in ("cold", "warm"):
        mm, ap = nums(d, "mini-mirror", kind, "wall"), nums(d, "aptly", kind, "wall")
        w(f"| {kind} build, wall (s) | {fmt_spread(mm)} | {fmt_spread(ap)} | {ratio(med(mm), med(ap))} |")
    for kind in ("cold", "warm"):
        mm, ap = nums(d, "mini-mirror", kind, "cpu"), nums(d, "aptly", kind, "cpu")
        w(f"| {kind} build, CPU user+sys (s) | {fmt_spread(mm)} | {fmt_spread(ap)} | {ratio(med(mm), med(ap))} |")
    for kind in ("cold", "warm"):
        mm, ap = med(nums(d, "mini-mirror", kind, "rss_kb")), med(nums(d, "aptly", kind, "rss_kb"))
        w(f"| {kind} build, peak RSS (MiB) | {mib_kb(mm)} | {mib_kb(ap)} | {ratio(mm, ap)} |")
    for kind in ("cold", "warm"):
        mm, ap = med(nums(d, "mini-mirror", kind, "bytes")), med(nums(d, "aptly", kind, "bytes"))
        w(f"| {kind} build, downloaded (MB) | {mb(mm)} | {mb(ap)} | {ratio(mm, ap)} |")
    for kind in ("cold", "warm"):
        mm, ap = med(nums(d, "mini-mirror", kind, "requests")), med(nums(d, "aptly", kind, "requests"))
        f = lambda v: "—" if v is None else f"{v:.0f}"
        w(f"| {kind} build, HTTP requests | {f(mm)} | {f(ap)} | {ratio(mm, ap)} |")
    if d.get(("mini-mirror", "force", "wall")):
        fw = nums(d, "mini-mirror", "force", "wall")
        fr = med(nums(d, "mini-mirror", "force", "rss_kb"))
        fb = med(nums(d, "mini-mirror", "force", "bytes"))
        aw = nums(d, "aptly", "warm", "wall")
        ar = med(nums(d, "aptly", "warm", "rss_kb"))
        ab = med(nums(d, "aptly", "warm", "bytes"))
        w(f"| warm, forced rebuild (`--force`; aptly: its warm run), wall (s) | {fmt_spread(fw)} | "
          f"{fmt_spread(aw)} | {ratio(med(fw), med(aw))} |")
        fc, ac = nums(d, "mini-mirror", "force", "cpu"), nums(d, "aptly", "warm", "cpu")
        w(f"| warm, forced rebuild, CPU user+sys (s) | {fmt_spread(fc)} | {fmt_spread(ac)} | {ratio(med(fc), med(ac))} |")
        w(f"| warm, forced rebuild, peak RSS (MiB) | {mib_kb(fr)} | {mib_kb(ar)} | {ratio(fr, ar)} |")
        w(f"| warm, forced rebuild, downloaded (MB) | {mb(fb)} | {mb(ab)} | {ratio(fb, ab)} |")
    mm, ap = med(nums(d, "mini-mirror", "cold", "packages")), med(nums(d, "aptly", "cold", "packages"))
    f = lambda v: "—" if v is None else f"{v:.0f}"
    w(f"| packages published | {f(mm)} | {f(ap)} | {ratio(mm, ap)} |")
    sig = {t: sorted(set(d.get((t, "cold", "signed"), []) + d.get((t, "warm", "signed"), []))) for t in TOOLS}
    w(f"| published InRelease verifies with gpgv | {'/'.join(sig['mini-mirror']) or '—'} | "
      f"{'/'.join(sig['aptly']) or '—'} | |")
    uv = sorted(set(d.get(("aptly", "cold", "upstream_verified"), []) + d.get(("aptly", "warm", "upstream_verified"), [])))
    w(f"| upstream InRelease verified against the source's key | yes (always; refuses otherwise) | "
      f"{'/'.join(uv) or '—'} (gpgv \"Good signature\" in every mirror update) | |")
    w("")

    # phases
    w("| tool | phase | cold (s) | warm (s) | warm `--force` (s) | peak RSS cold / warm (MiB) |")
    w("|---|---|---:|---:|---:|---:|")
    for tool in TOOLS:
        phases = []
        for (t, _k, key) in d:
            if t == tool and key.startswith("phase:") and key[6:] not in phases:
                phases.append(key[6:])
        order = ["setup", "upstream", "resolve", "plan", "pool",
                 "mirror-create", "mirror-update", "snapshot-create", "publish"]
        phases.sort(key=lambda p: (order.index(p) if p in order else 99, p))
        for p in phases:
            c, wm = med(nums(d, tool, "cold", "phase:" + p)), med(nums(d, tool, "warm", "phase:" + p))
            rc = med(nums(d, tool, "cold", "phase_rss:" + p))
            rw = med(nums(d, tool, "warm", "phase_rss:" + p))
            rss = "" if rc is None and rw is None else f"{mib_kb(rc)} / {mib_kb(rw)}"
            name = p
            if tool == "aptly" and p == "publish":
                name = "publish (cold: publish snapshot, warm: publish switch)"
            fc = med(nums(d, tool, "force", "phase:" + p))
            w(f"| {tool} | {name} | {fmt_s(c)} | {fmt_s(wm)} | {fmt_s(fc) if fc is not None else ''} | {rss} |")
    w("")
    w("Peak RSS per phase: aptly, each sub-command's own peak; mini-mirror, the process's peak so far "
      "at the end of the phase (its `--timings` output).")
    w("")

    # link throughput and the network floor
    url = d.get(("link", "-", "url"), [None])[0]
    thr = {}
    for how in ("direct", "proxy"):
        speeds = []
        for s in d.get(("link", how, "sample"), []):
            try:
                size, secs = (float(x) for x in s.split())
                if secs > 0:
                    speeds.append(size / secs)
            except ValueError:
                pass
        thr[how] = med(speeds)
    if url and thr["direct"]:
        size = None
        for s in d.get(("link", "direct", "sample"), []):
            size = float(s.split()[0])
        w(f"Link throughput (one curl stream, median of 3, `{url}`, {mb(size)} MB): "
          f"direct **{thr['direct'] / 1e6:.1f} MB/s**, through the counting proxy "
          f"{thr['proxy'] / 1e6:.1f} MB/s.\n" if thr["proxy"] else
          f"Link throughput: direct **{thr['direct'] / 1e6:.1f} MB/s** (`{url}`).\n")
        w("| tool | cold bytes (MB) | network floor = bytes ÷ direct throughput (s) | cold wall (s) | cold wall ÷ floor |")
        w("|---|---:|---:|---:|---:|")
        for tool in TOOLS:
            b, wall = med(nums(d, tool, "cold", "bytes")), med(nums(d, tool, "cold", "wall"))
            floor = None if b is None else b / thr["direct"]
            w(f"| {tool} | {mb(b)} | {fmt_s(floor)} | {fmt_s(wall)} | {ratio(wall, floor)} |")
        w("")

    # mini-mirror's own summary lines
    for kind in ("cold", "warm", "force"):
        s = d.get(("mini-mirror", kind, "summary"), [])
        if s:
            w(f"mini-mirror {kind} summary (round 1): `{s[0]}`  ")
    w("")

    # package set differences
    def pkgset(p):
        if not os.path.exists(p):
            return None
        with open(p) as f:
            return {line.strip() for line in f if line.strip()}

    a, b = pkgset(pk_mm), pkgset(pk_ap)
    if a is not None and b is not None:
        only_mm, only_ap = sorted(a - b), sorted(b - a)
        w(f"Published package sets (name version arch): {len(a & b)} in both, "
          f"{len(only_mm)} only in mini-mirror, {len(only_ap)} only in aptly.\n")
        for label, lst in (("only in mini-mirror", only_mm), ("only in aptly", only_ap)):
            if lst:
                shown = ", ".join(f"`{x}`" for x in lst[:60])
                more = f" … and {len(lst) - 60} more" if len(lst) > 60 else ""
                w(f"- {label}: {shown}{more}")
        w("")

    # errors
    errs = [(t, k, v) for (t, k, key), vs in d.items() if key == "error" for v in vs]
    if errs:
        w("Errors:\n")
        for t, k, v in errs:
            w(f"- {t} {k}: `{v.strip()}`")
        w("")
    print("\n".join(out))


if __name__ == "__main__":
    main()
