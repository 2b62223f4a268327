"""bench_step.py's path grammar (the GPU timing itself runs on the device machine only)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from support import triton_kernel_modules

# bench_step imports train, which imports the kernel modules: define them for this machine first
# (on the CPU, for Triton's interpreter), as the kernel tests of this process need them
triton_kernel_modules("scan_triton", "bimamba_triton", "conv_triton")
import bench_step  # noqa: E402


@pytest.mark.parametrize("spec, want", [("triton", ("triton", None)), ("triton+compile", ("triton", "default")),
                                        ("fused+graphs", ("fused", "reduce-overhead"))])
def test_paths_parse_and_print_back(spec, want):
    assert bench_step.parse_path(spec) == want
    assert bench_step.path_label(*want) == spec


@pytest.mark.parametrize("spec", ["fused+cudagraphs", "nope+compile", "fused+compile+graphs"])
def test_bad_paths_name_the_grammar(spec):
    with pytest.raises(SystemExit, match="SCAN, SCAN\\+compile or SCAN\\+graphs"):
        bench_step.parse_path(spec)


def test_the_old_path_cannot_use_graphs(capsys):
    """Graphed paths are dropped after their turns, which old's runner must outlive."""
    with pytest.raises(SystemExit) as e:
        bench_step.main(["--pair", "fused+graphs:fused+compile"])
    assert e.value.code == 2 and "+graphs is for NEW paths" in capsys.readouterr().err


# Run in its own interpreter: main() imports the Triton kernel modules without the interpreter
# that the kernel tests of this process select.
_ORCHESTRATION = """
import json, sys
import torch
import bench_step
alive = {"graphs": 0, "most": 0}
step_s = {("triton", "default"): 0.2, ("fused", "default"): 0.1, ("fused", "reduce-overhead"): 0.08}

class FakeRunner:
    def __init__(self, preset, rate, batch, scan, mode, tiles=None):
        self.path, self.graphs, self.host_s = (scan, mode), mode == "reduce-overhead", 0.01
        if self.graphs:
            alive["graphs"] += 1
            alive["most"] = max(alive["most"], alive["graphs"])

    def run(self, n):
        return n * step_s[self.path]

    def __del__(self):
        if self.graphs:
            alive["graphs"] -= 1

bench_step.Runner = FakeRunner
bench_step.profile = lambda runner, steps: ([{"kernel": str(runner.path)}], 1e3 * step_s[runner.path] / 2)
for name, value in {"is_available": lambda: True, "get_device_name": lambda: "fake",
                    "empty_cache": lambda: None, "reset_peak_memory_stats": lambda: None,
                    "max_memory_allocated": lambda: 2**30, "memory_stats": lambda: {}}.items():
    setattr(torch.cuda, name, value)
rc = bench_step.main(sys.argv[1:])
print(json.dumps({"rc": rc, "most": alive["most"]}))
"""


def test_graphed_candidates_take_turns_with_old_one_at_a_time(tmp_path):
    """The orchestration without a GPU: a fake runner whose step time depends on its path."""
    out = tmp_path / "r.json"
    args = ["--pair", "triton+compile:fused+compile,fused+graphs", "--tiles", "S:32:1+ck+gl",
            "--tiles", "S:32:1+ck+cv+gl", "--steps", "2", "--rounds", "2", "--profile", "1", "--out", str(out)]
    run = subprocess.run([sys.executable, "-c", _ORCHESTRATION, *args], capture_output=True, text=True,
                         cwd=Path(__file__).resolve().parents[1], timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert json.loads(run.stdout.strip().splitlines()[-1]) == {"rc": 0, "most": 1}
    rec = json.loads(out.read_text())["results"][0]
    assert [c["path"] for c in rec["candidates"]] == ["fused+compile"] * 2 + ["fused+graphs"] * 2
    assert len(rec["old"]["ex_per_s_all"]) == 2 * 3          # its own turns and one set beside each graphed path
    assert rec["new"]["path"] == "fused+graphs" and rec["speedup"] == 2.5
    # every path's kernels and their time a step in its record
    assert rec["new"]["profile"] == [{"kernel": "('fused', 'reduce-overhead')"}]
    assert rec["old"]["kernel_ms"] == 100.0 and [c["kernel_ms"] for c in rec["candidates"]] == [50.0, 50.0, 40.0, 40.0]
    assert [c["profile"] for c in rec["candidates"]][:2] == [[{"kernel": "('fused', 'default')"}]] * 2


def _winner(report, fallback="S:32:1+ck+gl"):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
    import winner  # noqa: PLC0415
    return winner.winner(report, fallback)


def test_check_winner_takes_the_fastest_tiles_and_graphs_only_where_they_beat_the_compiled_step():
    a, b = "S:32:1+ck+cv+cb+gl", "S:32:1+ck+sp+cv+cb+gl"
    cands = [{"path": "fused+compile", "tiles": a, "ex_per_s": 130.0},
             {"path": "fused+compile", "tiles": b, "ex_per_s": 140.0},
             {"path": "fused+graphs", "tiles": a, "ex_per_s": 150.0},
             {"path": "fused+graphs", "tiles": b, "ex_per_s": 139.0}]
    report = {"results": [{"old": {"path": "triton+compile", "ex_per_s": 67.0}, "new": cands[2], "candidates": cands}]}
    assert _winner(report) == (a, "--cuda-graphs")
    report["results"][0]["new"] = cands[1]
    assert _winner(report) == (b, "")
    # a single candidate, and a failed one (no examples/s): its tiles, no graphs
    assert _winner({"results": [{"old": {}, "new": {"path": "fused+graphs", "tiles": b, "ex_per_s": 9.0}}]}) == \
        (b, "--cuda-graphs")
    assert _winner({"results": [{"old": {}, "new": {"path": "fused+graphs", "error": "oom"}}]}) == ("S:32:1+ck+gl", "")


def test_check_winner_falls_back_to_the_first_tiles_without_a_report(tmp_path):
    script = Path(__file__).resolve().parents[1] / "bench" / "winner.py"
    run = subprocess.run([sys.executable, str(script), str(tmp_path / "none.json"), "S:32:1+ck+gl"],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0 and run.stdout.strip() == "S:32:1+ck+gl" and "no report" in run.stderr


def test_throughput_summary_keeps_each_paths_figures_without_its_kernels():
    old = {"path": "triton+compile", "ex_per_s": 67.0, "kernel_ms": 224.0, "profile": [{"kernel": "a"}]}
    new = {"path": "fused+graphs", "tiles": "S:32:1+ck+gl", "ex_per_s": 150.0, "profile": [{"kernel": "b"}]}
    rec = {"preset": "xs", "rate": 8000, "batch": 16, "seconds": 4.0, "old": old, "new": new, "candidates": [new],
           "speedup": 2.24, "alloc_retries": 0}
    report = {"gpu": "fake", "torch": "t", "command": "c", "results": [rec, {**rec, "speedup": 9.9}]}
    conf = bench_step.throughput_summary(report)["configurations"]
    assert list(conf) == ["xs-8k-b16"] and conf["xs-8k-b16"]["speedup"] == 2.24      # the first pair's
    assert conf["xs-8k-b16"]["old"] == {"path": "triton+compile", "ex_per_s": 67.0, "kernel_ms": 224.0}
    assert conf["xs-8k-b16"]["candidates"] == [{"path": "fused+graphs", "tiles": "S:32:1+ck+gl", "ex_per_s": 150.0}]
    assert "profile" in rec["new"]                                                       # the report keeps them
