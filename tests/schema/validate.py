#!/usr/bin/env python3
"""Validate JSON Lines files against a JSON Schema (draft 2020-12).

Usage: validate.py SCHEMA FILE...

Each FILE holds one JSON document per line ("-" reads standard input); empty
lines are skipped. Every document is checked with jsonschema's
Draft202012Validator and a FormatChecker. Each failure is printed as

    FILE:LINE: PATH: MESSAGE

where PATH locates the offending value inside the document ("$" is the
document itself, e.g. "$.readings[0].ts"). A summary line follows.

Exit status: 0 when at least one document was read and every document is
valid; 1 otherwise (an invalid document, a line that is not JSON, an
unreadable file, a bad schema, no documents at all); 2 for bad usage.

Parsing is stricter than Python's json defaults, as the IOC's parser may be:
NaN and Infinity, duplicate object keys and invalid UTF-8 are failures.
"""

import datetime
import json
import re
import sys

try:
    import jsonschema
    from jsonschema import Draft202012Validator, FormatChecker
except ImportError:  # pragma: no cover - depends on the machine
    sys.stderr.write("validate.py: needs python3-jsonschema (apt-get install python3-jsonschema)\n")
    sys.exit(1)

_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class DocumentError(ValueError):
    """A line that is not a strict JSON document."""


def _reject_constant(name):
    raise DocumentError("%s is not valid JSON" % name)


def _reject_duplicates(pairs):
    obj = {}
    for key, value in pairs:
        if key in obj:
            raise DocumentError("duplicate key %s" % json.dumps(key, ensure_ascii=False))
        obj[key] = value
    return obj


def parse_line(raw):
    """Parse one line (bytes) as a strict JSON document."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise DocumentError("invalid UTF-8 at byte %d" % e.start) from None
    try:
        return json.loads(text, parse_constant=_reject_constant,
                          object_pairs_hook=_reject_duplicates)
    except json.JSONDecodeError as e:
        raise DocumentError("not JSON: %s (column %d)" % (e.msg, e.colno)) from None


def json_path(path):
    """Render an error's absolute path (a deque of keys and indexes) as $.a[0].b."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += "[%d]" % part
        elif _IDENTIFIER.match(part):
            out += "." + part
        else:
            out += "[%s]" % json.dumps(part, ensure_ascii=False)
    return out


_RFC3339 = re.compile(r"^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|[+-](\d{2}):(\d{2}))$")


def is_rfc3339(value):
    """RFC 3339 date-time, calendar-checked; a leap second (:60) is accepted."""
    if not isinstance(value, str):
        return True  # formats only constrain strings
    m = _RFC3339.match(value)
    if not m or (m.group(9) and (int(m.group(9)) > 23 or int(m.group(10)) > 59)):
        return False
    year, month, day, hour, minute, second = (int(g) for g in m.groups()[:6])
    try:
        datetime.datetime(year, month, day, hour, minute, min(second, 59))
    except ValueError:
        return False
    return second <= 60


def make_format_checker():
    # jsonschema checks "date-time" only when the optional rfc3339-validator
    # module is installed, which Debian bookworm lacks; fill the hole so the
    # result does not depend on the machine.
    checker = FormatChecker()
    if "date-time" not in checker.checkers:
        checker.checks("date-time")(is_rfc3339)
    return checker


def error_sort_key(error):
    return [str(p) for p in error.absolute_path], error.message


def load_schema(path):
    try:
        with open(path, "rb") as f:
            schema = parse_line(f.read())
    except OSError as e:
        raise SystemExit("validate.py: %s: cannot read schema: %s" % (path, e.strerror)) from None
    except DocumentError as e:
        raise SystemExit("validate.py: %s: %s" % (path, e)) from None
    try:
        Draft202012Validator.check_schema(schema)
    except jsonschema.exceptions.SchemaError as e:
        raise SystemExit("validate.py: %s: not a valid draft 2020-12 schema: %s at %s"
                         % (path, e.message, json_path(e.absolute_path))) from None
    return schema


def open_input(name):
    if name == "-":
        return sys.stdin.buffer, "<stdin>"
    return open(name, "rb"), name


def main(argv):
    if len(argv) < 3 or argv[1] in ("-h", "--help"):
        sys.stderr.write("usage: validate.py SCHEMA FILE...\n")
        return 0 if len(argv) == 2 and argv[1] in ("-h", "--help") else 2

    schema = load_schema(argv[1])
    validator = Draft202012Validator(schema, format_checker=make_format_checker())

    documents = valid = invalid = 0
    unreadable = 0
    for name in argv[2:]:
        try:
            stream, label = open_input(name)
        except OSError as e:
            print("%s: cannot read: %s" % (name, e.strerror))
            unreadable += 1
            continue
        try:
            for lineno, raw in enumerate(stream, start=1):
                raw = raw.rstrip(b"\r\n")
                if not raw.strip():
                    continue
                documents += 1
                try:
                    doc = parse_line(raw)
                except DocumentError as e:
                    print("%s:%d: $: %s" % (label, lineno, e))
                    invalid += 1
                    continue
                errors = sorted(validator.iter_errors(doc), key=error_sort_key)
                for error in errors:
                    print("%s:%d: %s: %s" % (label, lineno, json_path(error.absolute_path),
                                             error.message))
                if errors:
                    invalid += 1
                else:
                    valid += 1
        except OSError as e:
            print("%s: cannot read: %s" % (label, e.strerror))
            unreadable += 1
        finally:
            if stream is not sys.stdin.buffer:
                stream.close()

    files = len(argv) - 2
    summary = "validate.py: %d document%s in %d file%s: %d valid, %d invalid" % (
        documents, "" if documents == 1 else "s", files, "" if files == 1 else "s", valid, invalid)
    if unreadable:
        summary += ", %d file%s unreadable" % (unreadable, "" if unreadable == 1 else "s")
    if documents == 0:
        summary += " (no documents read)"
    print(summary)
    return 0 if documents > 0 and invalid == 0 and unreadable == 0 else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
