"""`csv-query`: answers questions about the CSV files Warden grants it.

The manifest grants ./data, read-only, as /data. The tool filters rows,
picks columns and aggregates (count, sum, avg, min, max), optionally per
group, all with the standard library's `csv` module. It opens files with
plain `open()`: Warden decides which paths exist for it, so the tool has no
path checks of its own, and a path outside the grant is refused by the host
and recorded in the audit log.
"""

import csv
import json

import wit_world
from componentize_py_types import Err
from wit_world.imports import log
from wit_world.imports.warden_tool_types import (
    ToolError_Denied,
    ToolError_Failed,
    ToolError_InvalidInput,
    ToolInfo,
)

# The `guest` of the manifest's [[fs]] grant. Paths are absolute inside a
# component: there is no working directory.
DATA = "/data"

OPS = ("=", "!=", "<", "<=", ">", ">=", "contains")
AGGREGATES = ("count", "sum", "avg", "min", "max")

INPUT_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "properties": {
        "file": {
            "type": "string",
            "minLength": 1,
            "description": "CSV file with a header row, relative to /data (e.g. sales.csv).",
        },
        "where": {
            "type": "array",
            "description": "Conditions every returned row meets.",
            "items": {
                "type": "object",
                "properties": {
                    "column": {"type": "string"},
                    "op": {"enum": list(OPS)},
                    "value": {"type": ["string", "number"]},
                },
                "required": ["column", "op", "value"],
                "additionalProperties": False,
            },
        },
        "select": {"type": "array", "items": {"type": "string"}, "description": "Columns to return."},
        "aggregate": {
            "type": "object",
            "properties": {
                "op": {"enum": list(AGGREGATES)},
                "column": {"type": "string"},
            },
            "required": ["op"],
            "additionalProperties": False,
        },
        "group_by": {"type": "string", "description": "Aggregate per value of this column."},
        "limit": {"type": "integer", "minimum": 1, "maximum": 1000, "default": 100},
    },
    "required": ["file"],
    "additionalProperties": False,
}


class Invalid(Exception):
    """Input that does not match the schema; the message names the field."""


class WitWorld(wit_world.WitWorld):
    def describe(self) -> ToolInfo:
        return ToolInfo(
            name="csv-query",
            description=(
                "Queries a CSV file under /data: filters rows, selects columns, and counts, "
                "sums, averages or finds the min/max of a column, optionally per group."
            ),
            input_schema=json.dumps(INPUT_SCHEMA),
        )

    def invoke(self, input: str) -> str:
        try:
            query = parse(input)
        except Invalid as e:
            raise Err(ToolError_InvalidInput(str(e)))
        path = f"{DATA}/{query['file']}" if not query["file"].startswith("/") else query["file"]
        try:
            with open(path, newline="") as f:
                result = run(query, csv.DictReader(f))
        except Invalid as e:
            raise Err(ToolError_InvalidInput(str(e)))
        except PermissionError as e:
            # The host refused the path: it is outside what the manifest grants.
            raise Err(ToolError_Denied(f"{path}: {e.strerror}"))
        except OSError as e:
            raise Err(ToolError_Failed(f"{path}: {e.strerror or e}"))
        except csv.Error as e:
            raise Err(ToolError_Failed(f"{path}: not valid CSV: {e}"))
        log.log(log.Level.INFO, f"queried {path}")
        result["file"] = path
        return json.dumps(result)


def parse(text: str) -> dict:
    try:
        query = json.loads(text)
    except json.JSONDecodeError as e:
        raise Invalid(f"input: not JSON: {e}")
    if not isinstance(query, dict):
        raise Invalid("input: expected an object")
    unknown = sorted(set(query) - set(INPUT_SCHEMA["properties"]))
    if unknown:
        raise Invalid(f"{unknown[0]}: unknown field")
    if not isinstance(query.get("file"), str) or not query["file"]:
        raise Invalid("file: expected a non-empty string")
    where = query.setdefault("where", [])
    if not isinstance(where, list):
        raise Invalid("where: expected an array")
    for i, cond in enumerate(where):
        if not isinstance(cond, dict) or {"column", "op", "value"} - set(cond):
            raise Invalid(f"where[{i}]: expected {{column, op, value}}")
        if cond["op"] not in OPS:
            raise Invalid(f"where[{i}].op: expected one of {', '.join(OPS)}")
    select = query.setdefault("select", None)
    if select is not None and not (isinstance(select, list) and all(isinstance(c, str) for c in select)):
        raise Invalid("select: expected an array of column names")
    agg = query.setdefault("aggregate", None)
    if agg is not None:
        if not isinstance(agg, dict) or agg.get("op") not in AGGREGATES:
            raise Invalid(f"aggregate.op: expected one of {', '.join(AGGREGATES)}")
        if agg["op"] != "count" and not isinstance(agg.get("column"), str):
            raise Invalid(f"aggregate.column: required for {agg['op']}")
    group_by = query.setdefault("group_by", None)
    if group_by is not None and (agg is None or not isinstance(group_by, str)):
        raise Invalid("group_by: a column name, and only with aggregate")
    limit = query.setdefault("limit", 100)
    if not isinstance(limit, int) or isinstance(limit, bool) or not 1 <= limit <= 1000:
        raise Invalid("limit: expected an integer from 1 to 1000")
    return query


def number(value):
    """`value` as a float if it reads as one, else None."""
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def matches(row: dict, cond: dict) -> bool:
    cell, op, want = row.get(cond["column"]), cond["op"], cond["value"]
    if cell is None:
        return False
    if op == "contains":
        return str(want).lower() in cell.lower()
    a, b = number(cell), number(want)
    if a is None or b is None:
        a, b = cell, str(want)
    return {
        "=": a == b,
        "!=": a != b,
        "<": a < b,
        "<=": a <= b,
        ">": a > b,
        ">=": a >= b,
    }[op]


def check_columns(header, query: dict) -> None:
    named = [c["column"] for c in query["where"]] + (query["select"] or [])
    if query["aggregate"] and query["aggregate"].get("column"):
        named.append(query["aggregate"]["column"])
    if query["group_by"]:
        named.append(query["group_by"])
    missing = [c for c in named if c not in header]
    if missing:
        raise Invalid(f"{missing[0]}: no such column; the file has {', '.join(header)}")


def aggregate(op: str, column, rows: list):
    if op == "count":
        return len(rows)
    values = [number(r[column]) for r in rows]
    values = [v for v in values if v is not None]
    if not values:
        return None
    if op == "sum":
        return sum(values)
    if op == "avg":
        return sum(values) / len(values)
    return min(values) if op == "min" else max(values)


def run(query: dict, reader: csv.DictReader) -> dict:
    check_columns(reader.fieldnames or [], query)
    rows = [r for r in reader if all(matches(r, c) for c in query["where"])]
    agg = query["aggregate"]
    if agg is None:
        columns = query["select"] or reader.fieldnames
        picked = [{c: r[c] for c in columns} for r in rows[: query["limit"]]]
        return {"matched": len(rows), "rows": picked}
    if query["group_by"] is None:
        return {"matched": len(rows), agg["op"]: aggregate(agg["op"], agg.get("column"), rows)}
    groups: dict = {}
    for r in rows:
        groups.setdefault(r[query["group_by"]], []).append(r)
    return {
        "matched": len(rows),
        "groups": {
            key: aggregate(agg["op"], agg.get("column"), members)
            for key, members in sorted(groups.items())
        },
    }
