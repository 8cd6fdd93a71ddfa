#!/usr/bin/python3
"""Checks the neighbour lists of the most-bought UCI Online Retail products.

After `make demo` (state in .demo/state), for each of the N (100) products in
the most invoices, reads the bought-together list the scorer reads
(`xsell inspect --state DIR --json item ID`, "bought_list") and compares it
with the product's top K (10) by Dunning's LLR over the invoices, computed
here, exactly, from the CSV:

  - length: neighbours with similarity > 0 in the stored list;
  - overlap: how many of the list's first K are among the exact top K,
    divided by the size of the exact top K (K unless fewer items are
    positively associated with the product).

The invoices are those the dataset reader keeps (lib/tools/dataset.c): rows with a
CustomerID, InvoiceNo not starting with 'C', Quantity > 0, StockCode holding
an ASCII digit and not "C2"; an invoice is the set of its kept StockCodes
(compared exactly). Products are ranked by invoices holding them, ties by
StockCode (bytewise). LLR: the 2x2 table of invoices (k11 both, k12 the
product without the other, k21 the other without it, k22 neither), G^2 as
xs_sketch_llr() computes it, for positively associated pairs only (k11 N > n_i n_j);
the exact top K is ranked by LLR, then k11, then StockCode.

Prints one row per product and a summary; exits 0 when every product has at
least K neighbours and the mean overlap is at least 0.5 (the target),
1 otherwise, 2 on a usage or reading error. Python 3 standard library only.
"""
import argparse
import csv
import gzip
import io
import json
import math
import os
import subprocess
import sys


def xlogx(x):
    return x * math.log(x) if x > 0 else 0.0


def llr(k11, k12, k21, k22):
    """Dunning's G^2 exactly as xs_sketch_llr() (lib/core/sketch.c) computes it."""
    n = k11 + k12 + k21 + k22
    g = 2.0 * (xlogx(n) - xlogx(k11 + k12) - xlogx(k21 + k22) - xlogx(k11 + k21) -
               xlogx(k12 + k22) + xlogx(k11) + xlogx(k12) + xlogx(k21) + xlogx(k22))
    return g if g > 0 else 0.0


def is_product(code):
    return any("0" <= ch <= "9" for ch in code) and code != "C2"


def read_invoices(path):
    """InvoiceNo -> set of StockCodes, with the dataset reader's filters."""
    invoices = {}
    titles = {}
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as raw:
        text = io.TextIOWrapper(raw, encoding="utf-8", errors="replace", newline="")
        rows = csv.reader(text)
        header = [h.strip().lstrip("\ufeff") for h in next(rows)]
        col = {name: header.index(name) for name in
               ("InvoiceNo", "StockCode", "Description", "Quantity", "CustomerID")}
        for row in rows:
            if len(row) != len(header):
                continue
            if not row[col["CustomerID"]].strip():
                continue
            invoice = row[col["InvoiceNo"]].strip()
            if invoice.startswith("C"):
                continue
            try:
                qty = int(row[col["Quantity"]])
            except ValueError:
                continue
            code = row[col["StockCode"]]
            if qty <= 0 or not is_product(code):
                continue
            invoices.setdefault(invoice, set()).add(code)
            desc = row[col["Description"]].strip()
            if desc and code not in titles:
                titles[code] = desc
    return invoices, titles


def exact_tops(invoices, top_codes, k):
    """For each code of top_codes: its exact top k by LLR, and how many
    items are positively associated with it."""
    n_tx = len(invoices)
    count = {}
    for items in invoices.values():
        for c in items:
            count[c] = count.get(c, 0) + 1
    wanted = set(top_codes)
    pairs = {c: {} for c in top_codes}
    for items in invoices.values():
        hit = wanted.intersection(items)
        for c in hit:
            row = pairs[c]
            for o in items:
                if o != c:
                    row[o] = row.get(o, 0) + 1
    result = {}
    for c in top_codes:
        n_i = count[c]
        ranked = []
        for o, k11 in pairs[c].items():
            n_j = count[o]
            if k11 * n_tx <= n_i * n_j:
                continue
            g = llr(k11, n_i - k11, n_j - k11, n_tx - n_i - n_j + k11)
            ranked.append((-g, -k11, o.encode("utf-8"), o))
        ranked.sort()
        result[c] = [r[3] for r in ranked[:k]]
    return result, count, n_tx


def stored_list(xsell, state, code):
    out = subprocess.run([xsell, "inspect", "--state", state, "--json", "item", code],
                         capture_output=True, text=True)
    if out.returncode != 0:
        return None, out.stderr.strip()
    rec = json.loads(out.stdout)
    return [e["item"] for e in rec["bought_list"] if e["similarity"] > 0], None


def main():
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--state", default=os.path.join(root, ".demo", "state"))
    ap.add_argument("--xsell", default=os.path.join(root, "build", "bin", "xsell"))
    ap.add_argument("--data", default=os.path.join(
        root, "..", "shared", "data", "uci-online-retail", "online_retail.csv.gz"))
    ap.add_argument("--top", type=int, default=100, help="products checked (default 100)")
    ap.add_argument("--k", type=int, default=10, help="neighbours wanted (default 10)")
    ap.add_argument("--json", action="store_true", help="one JSON object instead of the table")
    a = ap.parse_args()
    if not os.path.isdir(a.state):
        print(f"check_popular_lists: no state directory {a.state} (run `make demo` first)",
              file=sys.stderr)
        return 2
    invoices, titles = read_invoices(a.data)
    by_invoices = {}
    for items in invoices.values():
        for c in items:
            by_invoices[c] = by_invoices.get(c, 0) + 1
    top = sorted(by_invoices, key=lambda c: (-by_invoices[c], c.encode("utf-8")))[:a.top]
    exact, count, n_tx = exact_tops(invoices, top, a.k)
    rows = []
    for rank, code in enumerate(top, 1):
        lst, err = stored_list(a.xsell, a.state, code)
        if lst is None:
            print(f"check_popular_lists: {code}: {err}", file=sys.stderr)
            return 2
        ref = exact[code]
        overlap = len(set(lst[:a.k]) & set(ref))
        rows.append({"rank": rank, "item": code, "title": titles.get(code, ""),
                     "invoices": count[code], "list_len": len(lst), "ref_len": len(ref),
                     "overlap": overlap,
                     "overlap_share": overlap / len(ref) if ref else None,
                     "list_top": lst[:a.k], "exact_top": ref})
    with_k = sum(r["list_len"] >= a.k for r in rows)
    empty = sum(r["list_len"] == 0 for r in rows)
    shares = [r["overlap_share"] for r in rows if r["overlap_share"] is not None]
    mean_overlap = sum(shares) / len(shares) if shares else 0.0
    mean_len = sum(r["list_len"] for r in rows) / len(rows) if rows else 0.0
    ok = with_k == len(rows) and mean_overlap >= 0.5
    summary = {"products": len(rows), "invoices": n_tx, "k": a.k, "with_k": with_k,
               "empty": empty, "mean_len": mean_len, "mean_overlap": mean_overlap, "pass": ok}
    if a.json:
        print(json.dumps({"summary": summary, "items": rows}))
    else:
        print(f"{'rank':>4} {'item':<8} {'invoices':>8} {'length':>6} {'overlap':>7}  title")
        for r in rows:
            ov = f"{r['overlap']}/{r['ref_len']}"
            print(f"{r['rank']:>4} {r['item']:<8} {r['invoices']:>8} {r['list_len']:>6} "
                  f"{ov:>7}  {r['title']}")
        print(f"\n{len(rows)} most-bought products over {n_tx} invoices: "
              f"{with_k} with >= {a.k} neighbours of positive similarity, {empty} empty, "
              f"mean length {mean_len:.1f}; mean overlap of the top {a.k} with the exact top "
              f"{a.k} by LLR: {mean_overlap:.3f}")
        print(f"target (all {len(rows)} with >= {a.k}, mean overlap >= 0.5): "
              f"{'PASS' if ok else 'FAIL'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
