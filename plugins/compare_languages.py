#!/usr/bin/env python3
"""Runs the same events through several builds of one projection with `projector test` and says
whether they built byte-identical tables and dead letters.

    plugins/compare_languages.py PROJECTOR EVENTS.jsonl REFERENCE.wasm OTHER.wasm... [--batch-size N]

Each run gets a fresh data folder. Compared, per table of the projection (rowid order, with
SQLite's storage class of every value and text as bytes): every row; for the dead letters,
every column except the ones that name the module or the clock (`wasm_sha256`, `refused_by`,
`first_failed_unix_ms`, `last_failed_unix_ms`). Prints the first differences and exits 1 if any build differs from REFERENCE.
"""

import argparse
import glob
import os
import sqlite3
import subprocess
import sys
import tempfile
import time


def _user_cache():
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(base, "projector", "compiled")


def run(projector, wasm, events, data, batch_size):
    started = time.monotonic()
    result = subprocess.run(
        # The user's compile cache, not the data folder's: a Python build then compiles once
        # for all the fixtures compared (PROJECTOR_CACHE overrides where it lives).
        [projector, "test", wasm, "--events", events, "--format", "json", "--data", data,
         "--cache", os.environ.get("PROJECTOR_CACHE") or _user_cache(),
         "--log", "error", "--batch-size", str(batch_size)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE,
    )
    seconds = time.monotonic() - started
    if result.returncode != 0:
        sys.exit("%s failed:\n%s" % (wasm, result.stderr.decode(errors="replace")[-2000:]))
    return seconds


def dump(data):
    (db,) = [p for p in glob.glob(os.path.join(data, "*", "*.db"))]
    conn = sqlite3.connect(db)
    conn.text_factory = bytes
    tables = {}
    names = [r[0].decode() for r in conn.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    for name in names:
        if name.startswith("_projector_") and name != "_projector_dead_letters":
            continue
        columns = [r[1].decode() for r in conn.execute("PRAGMA table_info(%s)" % name)]
        if name == "_projector_dead_letters":
            skip = ("wasm_sha256", "refused_by", "first_failed_unix_ms", "last_failed_unix_ms")
            columns = [c for c in columns if c not in skip]
        select = ", ".join("typeof(%s), %s" % (c, c) for c in columns)
        rows = conn.execute("SELECT %s FROM %s ORDER BY rowid" % (select, name)).fetchall()
        tables[name] = (columns, rows)
    return tables


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("projector")
    parser.add_argument("events")
    parser.add_argument("reference")
    parser.add_argument("others", nargs="+")
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    failed = False
    with tempfile.TemporaryDirectory() as tmp:
        dumps = {}
        for i, wasm in enumerate([args.reference] + args.others):
            data = os.path.join(tmp, str(i))
            seconds = run(args.projector, wasm, args.events, data, args.batch_size)
            dumps[wasm] = dump(data)
            rows = {t: len(r) for t, (_, r) in dumps[wasm].items()}
            print("%s: %.2f s, rows %s" % (wasm, seconds, rows))
        reference = dumps[args.reference]
        for wasm in args.others:
            other = dumps[wasm]
            for table in sorted(set(reference) | set(other)):
                a, b = reference.get(table), other.get(table)
                if a == b:
                    print("  %s: %s identical" % (wasm, table))
                    continue
                failed = True
                if a is None or b is None or a[0] != b[0]:
                    print("  %s: %s has other columns or is missing" % (wasm, table))
                    continue
                # Keyed by the first column (order, customer, or the dead letter's position).
                rows_a = {row[1]: row for row in a[1]}
                rows_b = {row[1]: row for row in b[1]}
                shown = 0
                for key in sorted(set(rows_a) | set(rows_b), key=repr):
                    row_a, row_b = rows_a.get(key), rows_b.get(key)
                    if row_a == row_b or shown >= 8:
                        continue
                    shown += 1
                    if row_a is None or row_b is None:
                        print("  %s: %s row %r only in %s" % (
                            wasm, table, key, "this build" if row_a is None else "the reference"))
                        continue
                    diff = ["%s: %r != %r" % (c, x, y) for c, x, y in
                            zip(a[0], row_a[1::2], row_b[1::2]) if x != y]
                    print("  %s: %s row %r: %s" % (wasm, table, key, "; ".join(diff)))
                if shown == 0:
                    print("  %s: %s has the same rows in another rowid order" % (wasm, table))
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
