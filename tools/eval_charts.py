#!/usr/bin/python3
"""Runs `xsell eval --json` on the shared data sets and draws the charts and
tables of docs/EVALUATION.md from what it printed.

  tools/eval_charts.py --run [--only NAME,...] [--no-exact NAME,...]
                                                 run eval, save docs/eval/NAME.json
  tools/eval_charts.py                           charts and tables from the saved JSON

Writes docs/eval/hitrate_by_decile.svg (HitRate@10 by popularity decile of
the trigger item, per data set and model) and docs/eval/popular_lists.svg
(the 100 most popular items' neighbour lists: length, and overlap of their
top 10 with the exact top 10 by LLR over the transactions), and prints the
Markdown tables. Python 3 standard library only; the SVG is written by hand.
"""
import argparse
import html
import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DATA = os.path.join(ROOT, "..", "shared", "data")
OUT = os.path.join(ROOT, "docs", "eval")

# name, title, format, files (relative to the data directory), models
DATASETS = [
    ("uci", "UCI Online Retail", "online-retail",
     ["uci-online-retail/online_retail.csv.gz"], "xsell,exact,popularity"),
    ("retailrocket", "RetailRocket (caserec)", "retailrocket",
     ["retailrocket-caserec"], "xsell,exact,popularity"),
    ("groceries", "Groceries", "baskets", ["groceries/groceries.csv"], "xsell,exact,popularity"),
    # the exact reference holds tens of millions of pairs here: left out
    ("belgium", "Retail (Belgium, FIMI)", "baskets",
     ["retail-belgium-fimi/retail.dat.gz"], "xsell,popularity"),
    ("yoochoose", "YOOCHOOSE clicks (100k)", "yoochoose",
     ["yoochoose-clicks-100k/yoochoose-clicks-100k_train_full.txt.gz",
      "yoochoose-clicks-100k/yoochoose-clicks-100k_test.txt"], "xsell,exact,popularity"),
]

MODEL_LABEL = {"xsell": "xsell", "exact co-occurrence (ref)": "exact (ref)",
               "popularity (trending)": "popularity"}
MODEL_COLOR = {"xsell": "#1f77b4", "exact co-occurrence (ref)": "#ff7f0e",
               "popularity (trending)": "#7f7f7f"}


def run_eval(xsell, name, fmt, files, models):
    cmd = [xsell, "eval", "--json", "--format", fmt, "--models", models] + \
          [os.path.join(DATA, f) for f in files]
    print("running:", " ".join(cmd), file=sys.stderr)
    out = subprocess.run(cmd, capture_output=True, text=True, check=True)
    doc = json.loads(out.stdout)
    doc["command"] = "build/bin/xsell eval --json --format %s --models %s %s" % (
        fmt, models, " ".join("../shared/data/" + f for f in files))
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, name + ".json"), "w") as f:
        json.dump(doc, f, indent=1, sort_keys=True)
        f.write("\n")


def load():
    docs = []
    for name, title, _, _, _ in DATASETS:
        path = os.path.join(OUT, name + ".json")
        if os.path.exists(path):
            with open(path) as f:
                docs.append((name, title, json.load(f)))
    return docs


class Svg:
    def __init__(self, w, h):
        self.w, self.h, self.parts = w, h, []

    def add(self, s):
        self.parts.append(s)

    def text(self, x, y, s, size=11, anchor="start", weight="normal", color="#222", rotate=None):
        tr = f' transform="rotate({rotate} {x:.1f} {y:.1f})"' if rotate is not None else ""
        self.add(f'<text x="{x:.1f}" y="{y:.1f}" font-size="{size}" text-anchor="{anchor}" '
                 f'font-weight="{weight}" fill="{color}"{tr}>{html.escape(s)}</text>')

    def line(self, x1, y1, x2, y2, color="#999", width=1, dash=None):
        d = f' stroke-dasharray="{dash}"' if dash else ""
        self.add(f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" '
                 f'stroke="{color}" stroke-width="{width}"{d}/>')

    def rect(self, x, y, w, h, color, opacity=1.0):
        self.add(f'<rect x="{x:.1f}" y="{y:.1f}" width="{max(w, 0):.1f}" height="{max(h, 0):.1f}" '
                 f'fill="{color}" fill-opacity="{opacity}"/>')

    def polyline(self, pts, color, width=2):
        p = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        self.add(f'<polyline points="{p}" fill="none" stroke="{color}" stroke-width="{width}"/>')

    def circle(self, x, y, r, color):
        self.add(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="{r}" fill="{color}"/>')

    def save(self, path):
        with open(path, "w") as f:
            f.write(f'<svg xmlns="http://www.w3.org/2000/svg" width="{self.w}" height="{self.h}" '
                    f'viewBox="0 0 {self.w} {self.h}" font-family="sans-serif">\n')
            f.write(f'<rect width="{self.w}" height="{self.h}" fill="white"/>\n')
            f.write("\n".join(self.parts))
            f.write("\n</svg>\n")


def nice_max(v):
    """The smallest axis top of the list at or above v (quarters read well)."""
    for m in (0.02, 0.04, 0.08, 0.12, 0.2, 0.24, 0.32, 0.4, 0.6, 0.8, 1.0):
        if v <= m:
            return m
    return v


def tick(v):
    return f"{v:.2f}" if abs(v * 100 - round(v * 100)) < 1e-9 else f"{v:.3f}"


def chart_deciles(docs, path):
    pw, ph, ml, mt = 300, 190, 50, 40
    cols = 3
    rows = (len(docs) + cols - 1) // cols
    svg = Svg(cols * (pw + ml + 20) + 20, rows * (ph + mt + 50) + 50)
    svg.text(20, 22, "HitRate@10 by popularity decile of the trigger item "
             "(1 = the most popular tenth of the items)", size=14, weight="bold")
    for li, model in enumerate(MODEL_COLOR):
        lx = 20 + 140 * li
        svg.line(lx, 38, lx + 18, 38, color=MODEL_COLOR[model], width=2)
        svg.circle(lx + 9, 38, 2.5, MODEL_COLOR[model])
        svg.text(lx + 24, 42, MODEL_LABEL[model], size=11)
    for i, (name, title, doc) in enumerate(docs):
        ox = 20 + (i % cols) * (pw + ml + 20) + ml
        oy = 50 + (i // cols) * (ph + mt + 50) + mt
        res = doc["results"]
        top = nice_max(max([d["rate"]["hitrate"] for r in res for d in r["deciles"]] + [0.01]))
        svg.text(ox, oy - 12, f"{title} ({res[0]['placement']} lists)", size=12,
                 weight="bold")
        for t in range(5):
            v = top * t / 4
            y = oy + ph - ph * t / 4
            svg.line(ox, y, ox + pw, y, color="#e0e0e0")
            svg.text(ox - 6, y + 4, tick(v), size=9, anchor="end")
        svg.line(ox, oy + ph, ox + pw, oy + ph, color="#444")
        svg.line(ox, oy, ox, oy + ph, color="#444")
        for d in range(10):
            svg.text(ox + pw * (d + 0.5) / 10, oy + ph + 14, str(d + 1), size=9, anchor="middle")
        svg.text(ox + pw / 2, oy + ph + 28, "trigger popularity decile", size=10,
                 anchor="middle")
        for li, r in enumerate(res):
            color = MODEL_COLOR.get(r["model"], "#000")
            pts = [(ox + pw * (d + 0.5) / 10, oy + ph - ph * r["deciles"][d]["rate"]["hitrate"] / top)
                   for d in range(10) if r["deciles"][d]["rate"]["points"] > 0]
            svg.polyline(pts, color)
            for x, y in pts:
                svg.circle(x, y, 2.5, color)
    svg.save(path)


def chart_popular(docs, path):
    pw, ph, ml, mt = 300, 170, 50, 40
    cols = 3
    rows = (len(docs) + cols - 1) // cols
    svg = Svg(cols * (pw + ml + 50) + 20, rows * (ph + mt + 60) + 60)
    svg.text(20, 22, "The 100 most popular items' neighbour lists (xsell): length (bars, left axis) "
             "and overlap of the top 10 with the exact top 10 by LLR (dots, right axis)",
             size=13, weight="bold")
    for i, (name, title, doc) in enumerate(docs):
        ox = 20 + (i % cols) * (pw + ml + 50) + ml
        oy = 60 + (i // cols) * (ph + mt + 60) + mt
        x = next(r for r in doc["results"] if r["model"] == "xsell")
        t = x["top_items"]
        items = t["list"]
        n = max(len(items), 1)
        lmax = 64 if max([it["list_len"] for it in items] + [1]) > 32 else 32
        svg.text(ox, oy - 24, title, size=12, weight="bold")
        svg.text(ox, oy - 10, f"{t['with_k']}/{t['items']} with >= 10 neighbours, "
                 f"{t['empty']} empty, mean overlap {t['mean_overlap']:.2f}", size=10)
        for k in range(5):
            y = oy + ph - ph * k / 4
            svg.line(ox, y, ox + pw, y, color="#e0e0e0")
            svg.text(ox - 6, y + 4, str(int(lmax * k / 4)), size=9, anchor="end")
            svg.text(ox + pw + 6, y + 4, f"{k / 4:.2f}", size=9)
        y10 = oy + ph - ph * 10 / lmax
        svg.line(ox, y10, ox + pw, y10, color="#d62728", dash="4,3")
        svg.text(ox + pw - 2, y10 - 3, "10", size=9, anchor="end", color="#d62728")
        bw = pw / n
        for j, it in enumerate(items):
            h = ph * min(it["list_len"], lmax) / lmax
            svg.rect(ox + j * bw + 0.5, oy + ph - h, bw - 1, h, "#1f77b4", 0.6)
            if it["ref_len"] > 0:
                share = it["overlap"] / it["ref_len"]
                svg.circle(ox + (j + 0.5) * bw, oy + ph - ph * share, 1.8, "#ff7f0e")
        svg.line(ox, oy + ph, ox + pw, oy + ph, color="#444")
        svg.line(ox, oy, ox, oy + ph, color="#444")
        svg.line(ox + pw, oy, ox + pw, oy + ph, color="#444")
        svg.text(ox + pw / 2, oy + ph + 16,
                 f"items by {t['class']} transactions, most popular first", size=10,
                 anchor="middle")
        svg.text(ox - 34, oy + ph / 2, "neighbours", size=10, anchor="middle", rotate=-90)
        svg.text(ox + pw + 38, oy + ph / 2, "overlap", size=10, anchor="middle", rotate=90)
    svg.save(path)


def tables(docs):
    print("| data set | events | points | model | HitRate@10 | MRR@10 | coverage | "
          "violations in cart / rebuy (items) | popular lists: >= 10 / empty / overlap |")
    print("|---|---|---|---|---|---|---|---|---|")
    for name, title, doc in docs:
        for i, r in enumerate(doc["results"]):
            v = r["violations"]["total"]
            t = r["top_items"]
            pop = (f"{t['with_k']} / {t['empty']} / {t['mean_overlap']:.3f}"
                   if t["items"] else "")
            bold = "**" if r["model"] == "xsell" else ""
            head = (f"| {title} | {r['events']:,} | {r['points']:,} ({r['placement']})"
                    if i == 0 else "| | |")
            print(f"{head} | {bold}{MODEL_LABEL.get(r['model'], r['model'])}{bold} | "
                  f"{bold}{r['hitrate']:.4f}{bold} | {r['mrr']:.4f} | {r['coverage']:.3f} | "
                  f"{v['in_cart_items']:,} / {v['rebuy_items']:,} | {pop} |")
    print()
    print("| data set | model | " + " | ".join(f"d{d}" for d in range(1, 11)) + " |")
    print("|---|---|" + "---|" * 10)
    for name, title, doc in docs:
        for i, r in enumerate(doc["results"]):
            cells = " | ".join(f"{d['rate']['hitrate']:.3f}" for d in r["deciles"])
            print(f"| {title if i == 0 else ''} | {MODEL_LABEL.get(r['model'], r['model'])} | "
                  f"{cells} |")
        pts = " | ".join(f"{d['rate']['points']:,}" for d in doc["results"][0]["deciles"])
        print(f"| | (points) | {pts} |")


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--run", action="store_true", help="run xsell eval first")
    ap.add_argument("--only", default="", help="comma-separated data set names to run")
    ap.add_argument("--no-exact", default="",
                    help="data sets run without the exact reference (slow on UCI: ~20 min)")
    ap.add_argument("--xsell", default=os.path.join(ROOT, "build", "bin", "xsell"))
    a = ap.parse_args()
    if a.run:
        only = set(filter(None, a.only.split(",")))
        no_exact = set(filter(None, a.no_exact.split(",")))
        for name, title, fmt, files, models in DATASETS:
            if name in no_exact:
                models = ",".join(m for m in models.split(",") if m != "exact")
            if not only or name in only:
                run_eval(a.xsell, name, fmt, files, models)
    docs = load()
    if not docs:
        print("eval_charts: no docs/eval/*.json yet (run with --run)", file=sys.stderr)
        return 1
    chart_deciles(docs, os.path.join(OUT, "hitrate_by_decile.svg"))
    chart_popular(docs, os.path.join(OUT, "popular_lists.svg"))
    tables(docs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
