#!/usr/bin/env python3
"""Rough load times and throughput of plugin builds through `projector test`.

    plugins/bench_languages.py PROJECTOR EVENTS.jsonl PLUGIN.wasm... [--rounds N] [--batch-size N]

For each plugin, in a fresh data folder: a first run over one event (cold load: compile and
cache), a second (cached load), then EVENTS twice: the first projects them, the second finds
nothing to do but loads and prints the same tables. Events per second is the event count over
the difference of those two, so it leaves out loading and printing; it is given per wall-clock
second and per CPU second of the projector process (user plus system, all its threads), which
other load on the machine disturbs less. Rough: repeat and take the median.
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time


def timed(args):
    """Runs `args`; returns (wall seconds, CPU seconds of the process, user plus system)."""
    started = time.monotonic()
    child = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    stderr = child.stderr.read()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.monotonic() - started
    if status != 0:
        sys.exit("%s failed:\n%s" % (args, stderr.decode(errors="replace")[-2000:]))
    return seconds, usage.ru_utime + usage.ru_stime


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("projector")
    parser.add_argument("events")
    parser.add_argument("plugins", nargs="+")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--batch-size", type=int, default=500)
    args = parser.parse_args()
    with open(args.events, "rb") as f:
        count = sum(1 for line in f if line.strip())
    with tempfile.TemporaryDirectory() as tmp:
        first = os.path.join(tmp, "first.jsonl")
        with open(args.events, "rb") as f, open(first, "wb") as out:
            out.write(f.readline())
        for wasm in args.plugins:
            cold, cached, rates, cpu_rates = [], [], [], []
            for round in range(args.rounds):
                data = os.path.join(tmp, "%s-%d" % (os.path.basename(wasm), round))
                run = lambda events: timed([
                    args.projector, "test", wasm, "--events", events, "--data", data,
                    "--format", "json", "--log", "error", "--batch-size", str(args.batch_size)])
                cold.append(run(first)[0])
                cached.append(run(first)[0])
                busy, busy_cpu = run(args.events)
                idle, idle_cpu = run(args.events)
                rates.append((count - 1) / max(busy - idle, 1e-9))
                cpu_rates.append((count - 1) / max(busy_cpu - idle_cpu, 1e-9))
            print("%s: %d bytes; cold load %.2f s, cached load %.3f s (whole command); "
                  "%.0f events/s wall (rounds: %s), %.0f events per CPU second (rounds: %s)" % (
                      wasm, os.path.getsize(wasm), statistics.median(cold),
                      statistics.median(cached), statistics.median(rates),
                      " ".join("%.0f" % r for r in rates), statistics.median(cpu_rates),
                      " ".join("%.0f" % r for r in cpu_rates)))


if __name__ == "__main__":
    main()
