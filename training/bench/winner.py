"""The fastest candidate of a bench_step.py report (its first case), for check_winner.sh.

    python3 training/bench/winner.py REPORT.json FALLBACK_TILES

Prints one line, "TILES FLAG": the fastest new path's tiles and "--cuda-graphs" when that path
is a graphed one (it then beat every compiled candidate); a report that cannot be read, or
whose candidates all failed, gives their tiles or FALLBACK_TILES and no flag. Every path's figures go to stderr (the log).
"""

from __future__ import annotations

import json
import sys


def winner(report: dict, fallback: str) -> tuple[str, str]:
    best = report["results"][0]["new"]   # bench_step's fastest candidate
    graphs = "ex_per_s" in best and best["path"] == "fused+graphs"
    return best.get("tiles") or fallback, "--cuda-graphs" if graphs else ""


def main(argv: list[str]) -> int:
    path, fallback = argv
    try:
        report = json.load(open(path))
        r = report["results"][0]
    except (OSError, ValueError, KeyError, IndexError) as e:
        print(f"winner.py: no report ({e}); the curve takes {fallback}", file=sys.stderr)
        print(fallback)
        return 0
    fields = ("path", "tiles", "ex_per_s", "ex_per_s_all", "step_ms", "host_ms", "kernel_ms", "peak_gib", "error")
    for x in [r["old"], *r.get("candidates", [r["new"]])]:
        print("  ".join(f"{k}={x[k]}" for k in fields if k in x), file=sys.stderr)
    print(" ".join(winner(report, fallback)).strip())
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
