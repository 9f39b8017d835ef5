"""The TPC-H benchmark harness (bench/tpch.py) end to end at a tiny scale factor."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
HARNESS = REPO_ROOT / "bench" / "tpch.py"


def test_bench_harness_sf001(tmp_path: Path) -> None:
    data, out = tmp_path / "data", tmp_path / "results"
    env = {**os.environ, "SHOAL_DATA_DIR": str(data)}
    cmd = [
        sys.executable,
        str(HARNESS),
        "--sf",
        "0.01",
        "--queries",
        "1,6",
        "--runs",
        "1",
        "--threads",
        "2",
        "--data",
        str(data),
        "--out",
        str(out),
        "--timeout",
        "60",
    ]
    proc = subprocess.run(
        cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert proc.returncode == 0, f"exit code {proc.returncode}\n{proc.stdout}\n{proc.stderr}"

    report = json.loads((out / "tpch_sf0.01.json").read_text())
    assert report["engines"] == ["shoal", "duckdb"]
    assert report["queries"] == [1, 6]
    for q in ("1", "6"):
        result = report["results"][q]
        for engine in ("shoal", "duckdb"):
            entry = result[engine]
            assert entry["status"] == "ok", f"Q{q} {engine}: {entry['status']}: {entry['error']}"
            assert len(entry["times_s"]) == 1 and entry["times_s"][0] > 0
            assert entry["median_s"] == entry["times_s"][0]
            assert entry["warmup_s"] is not None
        assert result["ratio"]["shoal"] > 0
    assert report["summary"]["shoal"]["geomean_ratio"] > 0
    for engine in ("shoal", "duckdb"):
        assert report["rss"][engine]["peak_rss_mb"] > 0
    for key in ("cores", "python"):
        assert report["machine"][key]
    assert report["machine"]["versions"]["pyarrow"] and report["machine"]["versions"]["duckdb"]

    markdown = (out / "tpch_sf0.01.md").read_text()
    assert "| query | shoal median s | duckdb median s | ratio | status |" in markdown
    assert "| Q01 |" in markdown and "| Q06 |" in markdown
    assert markdown in proc.stdout
