#!/usr/bin/python3
"""Checks recorded HTTP answers against docs/openapi.yaml.

    check_openapi.py SPEC RECORDS.jsonl

RECORDS holds one JSON object per answer: method, target (path and query),
status, content_type, body (text), and for requests with one, request_body.
Each answer must belong to a documented path and method, have a documented
status, the documented content type, and, when JSON, a body that validates
against the documented schema (JSON Schema 2020-12, the dialect of OpenAPI
3.1); a JSON request body is validated against the operation's requestBody
schema when the answer is 2xx. Answers to undocumented paths must be 404
errors. Prints one line per failure and a summary; exit status 1 on any.
Needs Debian's python3-yaml and python3-jsonschema (/usr/bin/python3).
"""
import json
import re
import sys

import jsonschema
import yaml


def load(path):
    with open(path, encoding="utf-8") as f:
        return yaml.safe_load(f)


def path_regex(template):
    parts = re.split(r"(\{[^}]+\})", template)
    rx = "".join("[^/]+" if p.startswith("{") else re.escape(p) for p in parts)
    return re.compile("^" + rx + "$")


def main():
    spec = load(sys.argv[1])
    records = [json.loads(line) for line in open(sys.argv[2], encoding="utf-8") if line.strip()]
    resolver = jsonschema.RefResolver("", spec)
    validator_cls = jsonschema.Draft202012Validator
    paths = [(path_regex(t), t, ops) for t, ops in spec["paths"].items()]
    error_schema = spec["components"]["schemas"]["Error"]
    failures = 0
    checked = set()

    def validate(schema, doc, what):
        nonlocal failures
        errs = sorted(validator_cls(schema, resolver=resolver).iter_errors(doc), key=str)
        for e in errs[:3]:
            print(f"FAIL {what}: {e.message} at {list(e.absolute_path)}")
        failures += bool(errs)

    for r in records:
        what = f"{r['method']} {r['target'][:80]} -> {r['status']}"
        path = r["target"].split("?", 1)[0]
        ctype = (r.get("content_type") or "").split(";", 1)[0].strip()
        body = None
        if ctype == "application/json":
            try:
                body = json.loads(r["body"])
            except ValueError as e:
                print(f"FAIL {what}: body is not JSON ({e})")
                failures += 1
                continue
        match = next(((t, ops) for rx, t, ops in paths if rx.match(path)), None)
        if match is None:
            if r["status"] != 404 or body is None:
                print(f"FAIL {what}: undocumented path answered other than a JSON 404")
                failures += 1
            else:
                validate(error_schema, body, what)
            continue
        template, ops = match
        op = ops.get(r["method"].lower()) or (ops.get("get") if r["method"] == "HEAD" else None)
        if op is None:
            if r["status"] != 405:
                print(f"FAIL {what}: method not documented for {template}")
                failures += 1
            continue
        resp = op["responses"].get(str(r["status"])) or op["responses"].get("default")
        if resp is None:
            print(f"FAIL {what}: status {r['status']} not documented for {r['method']} {template}")
            failures += 1
            continue
        if "$ref" in resp:
            resp = resolver.resolve(resp["$ref"])[1]
        content = resp.get("content", {})
        if ctype not in content:
            print(f"FAIL {what}: content type {ctype!r} not documented ({', '.join(content)})")
            failures += 1
            continue
        if body is not None:
            validate(content[ctype]["schema"], body, what)
        if r.get("request_body") and 200 <= r["status"] < 300 and "requestBody" in op:
            try:
                req = json.loads(r["request_body"])
            except ValueError:
                req = None
            if req is not None:
                validate(op["requestBody"]["content"]["application/json"]["schema"], req,
                         what + " (request)")
        checked.add((r["method"], template, r["status"]))
    print(f"openapi: {len(records)} answers checked, {len(checked)} (method, path, status) "
          f"combinations, {failures} failures")
    for m, t, s in sorted(checked):
        print(f"  {m} {t} {s}")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
