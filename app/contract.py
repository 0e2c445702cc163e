"""The API contract: the committed ``openapi.json`` and the changes that
would break clients built from it.

    python -m app.contract write    # refresh openapi.json after adding to the API
    python -m app.contract check    # exit 1 and list what breaks existing clients

Breaking (``breaking_changes``): a removed endpoint, parameter, request or
response body, field or enum value; a changed type; a parameter or request
field that became required; a response field that stopped being required;
a renamed operationId (generated clients name their functions after it).
Additions (endpoints, optional parameters and fields, enum values) pass.
See docs/lims.md for the versioning policy this enforces.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from xrdid.data_paths import PROJECT_ROOT

__all__ = ["COMMITTED_SCHEMA", "breaking_changes", "live_schema", "main"]

COMMITTED_SCHEMA = PROJECT_ROOT / "openapi.json"
_METHODS = ("get", "put", "post", "delete", "patch", "head", "options")

Schema = Mapping[str, Any]


def live_schema() -> dict[str, Any]:
    """The schema the code serves at /openapi.json (built without starting anything)."""
    from app.core.config import Settings
    from app.main import create_app

    return create_app(Settings()).openapi()


class _Differ:
    def __init__(self, old: Schema, new: Schema) -> None:
        self.old_spec, self.new_spec = old, new
        self.problems: list[str] = []
        self._seen: set[tuple[str, str, str]] = set()

    def _resolve(self, spec: Schema, schema: Schema) -> Schema:
        while "$ref" in schema:
            name = schema["$ref"].rsplit("/", 1)[-1]
            schema = spec.get("components", {}).get("schemas", {}).get(name, {})
        return schema

    def _types(self, spec: Schema, schema: Schema) -> set[str]:
        """What a value may be: JSON types, unions flattened, $refs resolved."""
        schema = self._resolve(spec, schema)
        members = [*schema.get("anyOf", []), *schema.get("oneOf", [])]
        if members:
            return set().union(*(self._types(spec, m) for m in members))
        kind = schema.get("type")
        if kind is None:
            if "properties" in schema:
                return {"object"}
            if "enum" in schema:
                return {type(v).__name__ for v in schema["enum"]}
            return {"any"}
        kinds = {kind} if isinstance(kind, str) else set(kind)
        if kinds == {"string"} and schema.get("format") == "binary":
            return {"binary"}
        return kinds

    def _variants(self, spec: Schema, schema: Schema) -> list[Schema]:
        """A union's members (nested unions flattened), else the schema itself."""
        resolved = self._resolve(spec, schema)
        members = [*resolved.get("anyOf", []), *resolved.get("oneOf", [])]
        if not members:
            return [schema]
        return [v for m in members for v in self._variants(spec, m)]

    def _name(self, schema: Schema) -> str | None:
        ref = schema.get("$ref")
        return ref.rsplit("/", 1)[-1] if isinstance(ref, str) else None

    def schema(self, old: Schema, new: Schema, where: str, request: bool) -> None:
        key = (json.dumps(old, sort_keys=True), json.dumps(new, sort_keys=True), str(request))
        if key in self._seen:
            return
        self._seen.add(key)
        old_types, new_types = self._types(self.old_spec, old), self._types(self.new_spec, new)
        if old_types != new_types and "any" not in new_types:
            self.problems.append(
                f"{where}: type changed from {'|'.join(sorted(old_types))} "
                f"to {'|'.join(sorted(new_types))}"
            )
            return
        old_variants = self._variants(self.old_spec, old)
        new_variants = self._variants(self.new_spec, new)
        if len(old_variants) > 1 or len(new_variants) > 1:
            self._union(old_variants, new_variants, where, request)
            return
        old_r, new_r = self._resolve(self.old_spec, old), self._resolve(self.new_spec, new)
        removed = [v for v in old_r.get("enum", []) if v not in new_r.get("enum", old_r["enum"])]
        if removed:
            self.problems.append(f"{where}: enum values removed: {removed}")
        self._object(old_r, new_r, where, request)
        if "items" in old_r and "items" in new_r:
            self.schema(old_r["items"], new_r["items"], f"{where}[]", request)

    def _union(
        self, old: Sequence[Schema], new: Sequence[Schema], where: str, request: bool
    ) -> None:
        """Pair a union's members by component name, else by type."""
        for member in old:
            old_types = self._types(self.old_spec, member)
            if old_types == {"null"}:
                continue
            name = self._name(member)
            match = next((m for m in new if name and self._name(m) == name), None)
            match = match or next(
                (m for m in new if self._types(self.new_spec, m) == old_types), None
            )
            if match is None:
                self.problems.append(
                    f"{where}: the {name or '|'.join(old_types)} variant was removed"
                )
            else:
                self.schema(member, match, where, request)

    def _object(self, old: Schema, new: Schema, where: str, request: bool) -> None:
        old_props, new_props = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        for name, old_prop in old_props.items():
            if name not in new_props:
                self.problems.append(f"{where}.{name}: field removed")
                continue
            self.schema(old_prop, new_props[name], f"{where}.{name}", request)
        if request:
            for name in sorted(new_required - old_required):
                self.problems.append(f"{where}.{name}: field is now required")
        else:
            for name in sorted(old_required - new_required):
                if name in new_props:
                    self.problems.append(f"{where}.{name}: field is no longer always present")

    def operation(self, old: Schema, new: Schema, where: str) -> None:
        if old.get("operationId") != new.get("operationId"):
            # Generated clients name their functions and modules after it.
            self.problems.append(
                f"{where}: operationId changed from {old.get('operationId')} "
                f"to {new.get('operationId')}"
            )
        old_params = {(p["in"], p["name"]): p for p in old.get("parameters", [])}
        new_params = {(p["in"], p["name"]): p for p in new.get("parameters", [])}
        for (location, name), param in old_params.items():
            label = f"{where} {location} parameter {name}"
            if (location, name) not in new_params:
                self.problems.append(f"{label}: removed")
                continue
            changed = new_params[(location, name)]
            if changed.get("required") and not param.get("required"):
                self.problems.append(f"{label}: now required")
            self.schema(param.get("schema", {}), changed.get("schema", {}), label, request=True)
        for key, param in new_params.items():
            if key not in old_params and param.get("required"):
                self.problems.append(f"{where} {key[0]} parameter {key[1]}: new and required")
        old_body = old.get("requestBody", {}).get("content", {})
        new_body = new.get("requestBody", {}).get("content", {})
        for media, content in old_body.items():
            if media not in new_body:
                self.problems.append(f"{where} request body {media}: no longer accepted")
                continue
            self.schema(
                content.get("schema", {}), new_body[media].get("schema", {}), f"{where} body", True
            )
        for status, response in old.get("responses", {}).items():
            if not str(status).startswith("2"):
                continue
            if status not in new.get("responses", {}):
                self.problems.append(f"{where} response {status}: removed")
                continue
            new_content = new["responses"][status].get("content", {})
            for media, content in response.get("content", {}).items():
                if media not in new_content:
                    self.problems.append(f"{where} response {status} {media}: removed")
                    continue
                self.schema(
                    content.get("schema", {}),
                    new_content[media].get("schema", {}),
                    f"{where} response {status}",
                    request=False,
                )

    def run(self) -> list[str]:
        new_paths = self.new_spec.get("paths", {})
        for path, operations in self.old_spec.get("paths", {}).items():
            for method in _METHODS:
                if method not in operations:
                    continue
                where = f"{method.upper()} {path}"
                if method not in new_paths.get(path, {}):
                    self.problems.append(f"{where}: endpoint removed")
                    continue
                self.operation(operations[method], new_paths[path][method], where)
        return self.problems


def breaking_changes(old: Schema, new: Schema) -> list[str]:
    """What in ``new`` breaks a client built from ``old`` (empty: nothing)."""
    return _Differ(old, new).run()


def _dump(schema: Mapping[str, Any]) -> str:
    return json.dumps(schema, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m app.contract", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("command", choices=("write", "check"))
    parser.add_argument("--schema", type=Path, default=COMMITTED_SCHEMA)
    args = parser.parse_args(argv)
    live = live_schema()
    if args.command == "write":
        args.schema.write_text(_dump(live), encoding="utf-8")
        print(f"wrote {args.schema}")
        return 0
    problems = breaking_changes(json.loads(args.schema.read_text(encoding="utf-8")), live)
    for problem in problems:
        print(problem)
    print(f"{len(problems)} breaking changes against {args.schema}")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
