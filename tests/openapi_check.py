#!/usr/bin/env python3
"""Checks recorded HTTP exchanges of `elicence serve` against its own OpenAPI 3.1 document.

Used by tests/serve.rs: reads one JSON file {"doc": <GET /openapi.json>, "exchanges": [{"method",
"path", "status", "content_type", "body"}]}, validates the document itself with
openapi-spec-validator, then every exchange: its path must match a documented path template, its
method an operation, its status a documented response, its content type one of that response's
media types, and a JSON body the media type's schema (jsonschema, draft 2020-12, the dialect of
OpenAPI 3.1). Exchanges on routes the server does not have (the 404 fallback) are checked against
the Problem schema. Prints every failure and exits 1 when there is one.
"""

import json
import sys
from urllib.parse import urlsplit

from jsonschema import Draft202012Validator
from openapi_spec_validator import validate as validate_spec


def resolve(doc, node):
    """Follows a local `$ref` (`#/components/...`) to its target."""
    while isinstance(node, dict) and "$ref" in node:
        target = doc
        for part in node["$ref"].lstrip("#/").split("/"):
            target = target[part]
        node = target
    return node


def match(doc, path):
    """The documented path template `path` falls under, or None."""
    segments = path.split("/")
    for template in doc["paths"]:
        parts = template.split("/")
        if len(parts) != len(segments):
            continue
        if all(p == s or (p.startswith("{") and p.endswith("}") and s) for p, s in zip(parts, segments)):
            return template
    return None


def check_body(doc, schema, body, where, failures):
    try:
        instance = json.loads(body)
    except ValueError as e:
        failures.append(f"{where}: body is not JSON ({e}): {body[:200]!r}")
        return
    # A wrapper whose root holds the components, so `#/components/...` references resolve.
    wrapper = {"components": doc.get("components", {}), "allOf": [schema]}
    for error in Draft202012Validator(wrapper).iter_errors(instance):
        failures.append(f"{where}: {error.message} at {list(error.absolute_path)}")


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        recorded = json.load(f)
    doc = recorded["doc"]
    failures = []
    try:
        validate_spec(doc)
    except Exception as e:  # the validator raises its own error types
        failures.append(f"the OpenAPI document is not valid: {e}")
    problem = {"$ref": "#/components/schemas/Problem"}
    checked = 0
    for x in recorded["exchanges"]:
        path = urlsplit(x["path"]).path
        where = f'{x["method"]} {x["path"]} -> {x["status"]}'
        media = x["content_type"].split(";")[0].strip()
        template = match(doc, path)
        if template is None:
            if x["status"] != 404 or media != "application/problem+json":
                failures.append(f"{where}: undocumented path")
            else:
                check_body(doc, problem, x["body"], where, failures)
            checked += 1
            continue
        operation = doc["paths"][template].get(x["method"].lower())
        if operation is None:
            failures.append(f"{where}: undocumented method on {template}")
            continue
        responses = operation.get("responses", {})
        response = resolve(doc, responses.get(str(x["status"])) or responses.get("default"))
        if response is None:
            failures.append(f"{where}: status not documented for {template}")
            continue
        content = response.get("content")
        if content is None:
            checked += 1
            continue
        if media not in content:
            failures.append(f"{where}: content type {media!r} not in {sorted(content)}")
            continue
        schema = content[media].get("schema")
        if schema is not None and (media.endswith("json")):
            check_body(doc, schema, x["body"], where, failures)
        checked += 1
    for failure in failures:
        print(failure)
    print(f"{checked} exchanges checked, {len(failures)} failures")
    sys.exit(1 if failures else 0)


if __name__ == "__main__":
    main()
