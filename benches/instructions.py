#!/usr/bin/env python3
"""Instructions and simulated L1 cache misses per task, Warden against raw wasmtime.

Runs benches of `benches/task.rs` under valgrind's callgrind (with its cache simulator)
and prints, per task: instructions on the thread that ran it, its L1 instruction and
data misses, and the instructions of the audit log's writer thread where there is one.
Unlike the benches' times, these counts come out the same from run to run on shared
vCPUs, so they show what Warden's own code adds to a task and what it costs in the
cache, apart from the machine's noise.

    python3 benches/instructions.py [BENCH ...]

BENCH defaults to `task/raw-wasmtime task/warden task/warden-log-none`. Needs `valgrind`
(Debian's package) and builds the bench with cargo first. About a minute a bench.
"""

import json
import os
import re
import subprocess
import sys
import tempfile

EVENTS = ["Ir", "Dr", "Dw", "I1mr", "D1mr", "D1mw", "ILmr", "DLmr", "DLmw"]
ROW = re.compile(r"^\s*((?:(?:[\d,]+ \(\s*[\d.]+%\)|\.)\s+){9})\s*([*<>])?\s*(\S.*)$")
NUM = re.compile(r"([\d,]+) \(\s*[\d.]+%\)|(?<!\S)\.(?!\S)")
CALLS = re.compile(r"\((\d[\d,]*)x\)")


def bench_binary():
    out = subprocess.run(
        ["cargo", "bench", "--bench", "task", "--no-run", "--message-format=json"],
        check=True,
        stdout=subprocess.PIPE,
        text=True,
    ).stdout
    for line in out.splitlines():
        msg = json.loads(line)
        if msg.get("reason") == "compiler-artifact" and msg["target"]["name"] == "task":
            if msg.get("executable"):
                return msg["executable"]
    sys.exit("cargo built no `task` bench executable")


def rows(path, tree):
    """(marker, events, name) per line of callgrind_annotate's inclusive listing; nothing
    for the empty file callgrind leaves under the process's own name."""
    done = subprocess.run(
        ["callgrind_annotate", "--inclusive=yes", "--threshold=100", f"--tree={tree}", path],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    if done.returncode != 0:
        return
    for line in done.stdout.splitlines():
        m = ROW.match(line)
        if not m:
            continue
        vals = [int(a.replace(",", "")) if a else 0 for a in NUM.findall(m.group(1))]
        if len(vals) == 9:
            yield m.group(2) or "", dict(zip(EVENTS, vals)), m.group(3)


def per_iteration(path):
    """Events of one run of criterion's measured routine (the largest call its `iter`
    makes) and how many times it ran; None for a thread that ran no bench."""
    iterating, best = False, None
    for marker, ev, name in rows(path, "calling"):
        if marker == "*":
            iterating = "criterion::bencher::Bencher<M>::iter " in name
        elif marker == ">" and iterating:
            calls = CALLS.search(name)
            if calls and (best is None or ev["Ir"] > best[0]["Ir"]):
                best = (ev, int(calls.group(1).replace(",", "")))
    return best


def writer(path):
    for _, ev, name in rows(path, "none"):
        # Every sink of the bench is opened, so idle writers start even where the
        # task's records are discarded; theirs is the one that wrote something.
        if "warden::audit::log::Writer::run" in name and ev["Ir"] > 1_000_000:
            return ev["Ir"]
    return None


def measure(binary, bench):
    with tempfile.TemporaryDirectory() as tmp:
        out = os.path.join(tmp, "cg")
        subprocess.run(
            [
                "valgrind", "--tool=callgrind", "--cache-sim=yes", "--separate-threads=yes",
                "--smc-check=all-non-file", f"--callgrind-out-file={out}",
                binary, "--bench", f"^{re.escape(bench)}$", "--profile-time", "5",
            ],
            check=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env={**os.environ, "WARDEN_BENCH_SLOTS": "2"},
        )
        task, writes = None, None
        for name in sorted(os.listdir(tmp)):
            path = os.path.join(tmp, name)
            if task is None:
                task = per_iteration(path)
            w = writer(path)
            if w is not None:
                writes = w
        if task is None:
            sys.exit(f"{bench}: no criterion iterations found in callgrind's output")
        ev, n = task
        return n, {k: v / n for k, v in ev.items()}, None if writes is None else writes / n


def main():
    benches = sys.argv[1:] or ["task/raw-wasmtime", "task/warden", "task/warden-log-none"]
    binary = bench_binary()
    base = None
    print(f"{'bench':<24} {'tasks':>6} {'instr':>9} {'ratio':>6} {'L1i miss':>9} {'L1d miss':>9} {'writer':>8}")
    for bench in benches:
        n, ev, writes = measure(binary, bench)
        base = base or ev["Ir"]
        print(
            f"{bench:<24} {n:>6} {ev['Ir']:>9.0f} {ev['Ir'] / base:>5.2f}x {ev['I1mr']:>9.0f} "
            f"{ev['D1mr'] + ev['D1mw']:>9.0f} {'' if writes is None else f'{writes:.0f}':>8}"
        )


if __name__ == "__main__":
    main()
