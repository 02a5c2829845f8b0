#!/usr/bin/env python3
"""Reads `perf script` (comm, tid, period, ip, sym, dso; call graphs) on stdin and prints where a
run's CPU time went, in microseconds per request: each sample goes to the first part of the work
below that its thread or any frame of its stack belongs to (so a part includes what it calls,
minus the parts listed before it), and a second column says how much of that was the kernel's.

    perf script ... | scripts/profile-pages.py NAME REQUESTS

Used by scripts/profile-pages; the parts are the ones docs/upstream/checked-in-pages.md names.
"""

import collections
import sys

# (part, test on the thread name and the stack's symbols), in order: the first that holds wins.
PARTS = [
    ("SQLite, on sqlx's worker thread", lambda comm, syms: comm.startswith("sqlx-sqlite")),
    (
        "the room door: cookie, key card (cached), booking read, from the auth context's `me`",
        lambda comm, syms: any(
            "guard..CheckedIn" in s or "room_door" in s or "booking_with_guest" in s for s in syms
        ),
    ),
    (
        "serde_json (resources serialized into the page, server function answers)",
        lambda comm, syms: any(s.startswith("serde_json::") or "serde_json.." in s for s in syms),
    ),
    (
        "rendering: Leptos, tachys, reactive_graph, the app's views",
        lambda comm, syms: any(
            s.startswith(("leptos", "tachys", "reactive_graph", "keycard_app", "<keycard_app"))
            or "tachys.." in s
            or "leptos.." in s
            or "reactive_graph.." in s
            or "keycard_app.." in s
            for s in syms
        ),
    ),
    (
        "HTTP and middleware: hyper, axum, tower, Keycard's layers",
        lambda comm, syms: any(
            s.startswith(("hyper", "axum", "tower", "keycard_server", "<hyper", "<axum", "<tower"))
            or "hyper.." in s
            or "axum.." in s
            or "tower_http.." in s
            or "keycard_server.." in s
            for s in syms
        ),
    ),
    ("tokio: scheduling, timers, the I/O driver", lambda comm, syms: any("tokio" in s for s in syms)),
    ("anything else", lambda comm, syms: True),
]


def samples(lines):
    """Yields (comm, period, [(symbol, dso)]) for each sample of `perf script`'s output."""
    comm, period, frames = None, 0, []
    for line in lines:
        if not line.strip():
            if comm is not None:
                yield comm, period, frames
            comm, period, frames = None, 0, []
        elif not line.startswith((" ", "\t")):
            # "comm tid period" (comm may hold spaces)
            head = line.split()
            comm, period = " ".join(head[:-2]), int(head[-1])
            frames = []
        else:
            parts = line.strip().split(None, 1)
            rest = parts[1] if len(parts) > 1 else ""
            dso = rest[rest.rfind("(") + 1 : -1] if rest.endswith(")") else ""
            sym = rest[: rest.rfind("(")].strip() if dso else rest
            frames.append((sym, dso))
    if comm is not None:
        yield comm, period, frames


def main():
    name, requests = sys.argv[1], int(sys.argv[2])
    total = collections.Counter()
    kernel = collections.Counter()
    leaves = collections.Counter()
    count = 0
    for comm, period, frames in samples(sys.stdin):
        count += 1
        syms = [sym for sym, _ in frames]
        part = next(label for label, test in PARTS if test(comm, syms))
        # A cpu-clock sample's period is the CPU time it stands for, in nanoseconds.
        total[part] += period
        in_kernel = bool(frames) and "kernel" in frames[0][1]
        if in_kernel:
            kernel[part] += period
        leaf = frames[0][0] if frames else "?"
        leaves["[kernel]" if in_kernel else leaf.split("::h")[0][:90]] += period
    if not count or not requests:
        print(f"{name}: no samples or no requests", file=sys.stderr)
        sys.exit(1)
    cpu = sum(total.values())
    us = lambda ns: ns / 1000 / requests  # noqa: E731 (CPU µs per request)
    print(f"\n### {name}: {requests} requests, {count} samples, {us(cpu):.0f} CPU µs per request")
    print("| part | CPU µs per request | of which in the kernel | share |")
    print("|---|---|---|---|")
    for label, _ in PARTS:
        if total[label]:
            print(f"| {label} | {us(total[label]):.1f} | {us(kernel[label]):.1f} | "
                  f"{100 * total[label] / cpu:.0f} % |")
    print("\nWhere the samples stopped (self time), the first 12:")
    for leaf, ns in leaves.most_common(12):
        print(f"  {100 * ns / cpu:5.1f} %  {leaf}")


if __name__ == "__main__":
    main()
