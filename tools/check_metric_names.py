#!/usr/bin/env python3
"""Checks that every metric a Grafana dashboard or a Prometheus rule file
queries is one the worker exports.

    tools/check_metric_names.py --metrics SCRAPE FILE...

SCRAPE is the text of a real /metrics scrape of the worker. Each FILE is a
Grafana dashboard (.json: every "expr" of its panels' targets, and the
metric of label_values() in its template variables) or a Prometheus rule
file (.yml/.yaml: every rule's "expr"). A name is exported when the scrape
has a sample or a # TYPE line of that name, or it is <histogram>_bucket,
_sum or _count of a family typed histogram. Exit 1 listing every unknown
name with the file and query it comes from; prints what it checked.
"""
import argparse
import json
import re
import sys

KEYWORDS = {"and", "or", "unless", "by", "without", "on", "ignoring", "group_left",
            "group_right", "offset", "bool", "inf", "nan", "atan2"}
IDENT = re.compile(r"[A-Za-z_:][A-Za-z0-9_:]*")


def exported(scrape_text):
    samples, types = set(), {}
    for line in scrape_text.splitlines():
        if line.startswith("# TYPE "):
            parts = line.split()
            if len(parts) >= 4:
                types[parts[2]] = parts[3]
        elif line and not line.startswith("#"):
            samples.add(re.split(r"[{ ]", line, 1)[0])
    names = set(samples) | set(types)
    for fam, t in types.items():
        if t == "histogram":
            names |= {fam + "_bucket", fam + "_sum", fam + "_count"}
    return names


def metric_names(expr):
    """The metric names a PromQL expression selects."""
    e = re.sub(r'"(?:\\.|[^"\\])*"', '""', expr)       # string literals
    e = re.sub(r"'(?:\\.|[^'\\])*'", "''", e)
    e = re.sub(r"\{[^}]*\}", " ", e)                     # label matchers
    e = re.sub(r"\[[^\]]*\]", " ", e)                    # range and subquery selectors
    e = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", e)
    e = re.sub(r"\$\{?\w+\}?", " ", e)                   # dashboard variables
    names = set()
    for m in IDENT.finditer(e):
        word = m.group(0)
        rest = e[m.end():].lstrip()
        if rest.startswith("(") or word.lower() in KEYWORDS:
            continue  # a function or an aggregation, or a keyword
        if re.fullmatch(r"\d+[smhdwy]", word):
            continue
        names.add(word)
    return names


def queries(path):
    """(where, expression) pairs of a dashboard or a rule file."""
    out = []
    if path.endswith(".json"):
        dash = json.load(open(path))

        def walk(node, where):
            if isinstance(node, dict):
                title = node.get("title", where)
                for k, v in node.items():
                    if k == "expr" and isinstance(v, str):
                        out.append((f"panel '{title}'", v))
                    else:
                        walk(v, title)
            elif isinstance(node, list):
                for v in node:
                    walk(v, where)

        walk(dash.get("panels", []), "")
        for var in dash.get("templating", {}).get("list", []):
            q = var.get("query")
            q = q.get("query", "") if isinstance(q, dict) else (q or "")
            for m in re.finditer(r"label_values\(\s*([^,)]+)", q):
                out.append((f"variable '{var.get('name')}'", m.group(1)))
    else:
        import yaml  # python3-yaml
        doc = yaml.safe_load(open(path))
        for g in doc.get("groups", []):
            for r in g.get("rules", []):
                out.append((f"rule '{r.get('alert') or r.get('record')}'", r["expr"]))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--metrics", required=True, help="a /metrics scrape of the worker")
    ap.add_argument("files", nargs="+")
    a = ap.parse_args()
    known = exported(open(a.metrics).read())
    bad = 0
    for f in a.files:
        qs = queries(f)
        used = set()
        for where, q in qs:
            names = metric_names(q)
            if not names:
                print(f"{f}: {where}: no metric in '{q}'", file=sys.stderr)
                bad += 1
            for n in sorted(names - known):
                print(f"{f}: {where}: '{n}' is not exported by the worker (query: {q})",
                      file=sys.stderr)
                bad += 1
            used |= names
        print(f"{f}: {len(qs)} queries, {len(used)} metric names, "
              f"{len(used - known)} unknown")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
