"""Start-up time of `overtone plugins` with every installed plugin, next to bare Python.

Both commands run in the same interpreter and session, alternating, so the machine's state
is shared. Prints a markdown table: medians, the difference (goal: under 0.3 s) and the ratio.

    python benchmarks/bench_startup.py [--repeats 15]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=15)
    args = parser.parse_args()
    env_plugins = json.loads(subprocess.run([sys.executable, "-m", "overtone", "plugins", "--json"],
                                            capture_output=True, text=True, check=True).stdout)
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "overtone plugins": [sys.executable, "-m", "overtone", "plugins"],
        "overtone plugins --json": [sys.executable, "-m", "overtone", "plugins", "--json"],
    }
    times: dict[str, list[float]] = {name: [] for name in commands}
    for command in commands.values():
        timed(command)  # warm the file cache
    for _ in range(args.repeats):
        for name, command in commands.items():
            times[name].append(timed(command))
    base = statistics.median(times["python -c pass"])
    print(f"plugins loaded: {', '.join(p['name'] for p in env_plugins['plugins'])}")
    print(f"components: {len(env_plugins['components'])}; repeats: {args.repeats}; cpus: {os.cpu_count()}\n")
    print("| command | median (s) | over bare Python (s) | ratio |")
    print("|---|---|---|---|")
    for name, values in times.items():
        median = statistics.median(values)
        print(f"| `{name}` | {median:.3f} | {median - base:+.3f} | {median / base:.2f}x |")
    worst = max(statistics.median(v) for v in times.values()) - base
    print(f"\ngoal: under 0.3 s over bare Python -> {'met' if worst < 0.3 else 'NOT met'} ({worst:.3f} s)")


if __name__ == "__main__":
    main()
