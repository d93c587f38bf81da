#!/usr/bin/env python3
"""The Python peer of the benchmark: what a team would write first.

Finds the Ingress writes (create, update, patch, delete of `ingresses`, not a
subresource) in the same bytes the Rust benchmark reads, two ways:

  naive      json.loads every audit event
  prefilter  json.loads only events whose text holds "ingresses"

Inputs: `s3` (one gzip object of JSON lines) or `cloudwatch` (files, each a
CloudWatch Logs subscription Lambda event: base64, gzip, envelope JSON, the
audit event as a JSON string per log event).

Prints one line: best-of-three seconds (the interpreter's start excluded) and
the number of writes found, which must match the Rust figure.
"""

import base64
import gzip
import json
import sys
import time
import zlib

WRITES = {"create", "update", "patch", "delete"}


def is_write(event):
    ref = event.get("objectRef") or {}
    return (
        ref.get("resource") == "ingresses"
        and not ref.get("subresource")
        and event.get("verb") in WRITES
    )


def messages_s3(path):
    with gzip.open(path, "rb") as f:
        for line in f:
            yield line


def messages_cloudwatch(paths):
    for path in paths:
        with open(path, "rb") as f:
            event = json.load(f)
        data = zlib.decompress(base64.b64decode(event["awslogs"]["data"]), 31)
        for log_event in json.loads(data)["logEvents"]:
            yield log_event["message"]


def count(messages, prefilter):
    found = 0
    for message in messages:
        needle = b"ingresses" if isinstance(message, bytes) else "ingresses"
        if prefilter and needle not in message:
            continue
        if is_write(json.loads(message)):
            found += 1
    return found


def main():
    kind, mode, paths = sys.argv[1], sys.argv[2], sys.argv[3:]
    best, found = float("inf"), 0
    for _ in range(3):
        start = time.perf_counter()
        messages = messages_s3(paths[0]) if kind == "s3" else messages_cloudwatch(paths)
        found = count(messages, mode == "prefilter")
        best = min(best, time.perf_counter() - start)
    print(f"{best:.6f} {found}")


if __name__ == "__main__":
    main()
