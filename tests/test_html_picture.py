"""The stage graph as a self-contained HTML page: its contents, its hot spots, the
SQL and CLI doors to it, and TPC-H Q5 / Q21 rendered by headless Chromium."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import pytest
from support.tpch import query_text, tpch_connection

import shoal
from shoal.viz.hotspots import busy_seconds, find_hot_spots
from shoal.viz.html import render_html

CHROMIUM = shutil.which("chromium") or (
    "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else None
)
DOCS = Path(__file__).resolve().parents[1] / "docs"


def _stage_ids(html: str) -> set[int]:
    return {int(m) for m in re.findall(r'<g id="stage-(\d+)"', html)}


def _exchange_ids(html: str) -> set[tuple[int, int]]:
    return {(int(a), int(b)) for a, b in re.findall(r'<g id="exchange-(\d+)-(\d+)"', html)}


def _check_complete(html: str, data: dict[str, Any]) -> None:
    """Every stage is a box and every exchange a labelled arrow; nothing is fetched."""
    stages = {int(s["stage"]) for s in data["stages"]}
    exchanges = {
        (int(s["stage"]), int(s["consumer"])) for s in data["stages"] if s["consumer"] is not None
    }
    assert _stage_ids(html) == stages
    assert _exchange_ids(html) == exchanges
    for s in data["stages"]:
        if s["consumer"] is not None:
            assert f'id="exchange-{s["stage"]}-{s["consumer"]}-arrow"' in html
            assert s["output"].replace("<", "&lt;").replace(">", "&gt;") in html or (
                s["output"][:30] in html
            )
    assert "http://" not in html and "https://" not in html
    assert "<script" not in html and "<link" not in html and "@import" not in html


def test_plan_picture_via_sql_and_api(reservations_dir: Path) -> None:
    con = shoal.connect(partitions=3)
    con.register_parquet("reservations", reservations_dir)
    sql = "SELECT issuer, sum(notional) AS s FROM reservations GROUP BY issuer ORDER BY s DESC LIMIT 5"
    html = con.sql(f"EXPLAIN (FORMAT HTML) {sql}").to_arrow().column("html")[0].as_py()
    data = json.loads(con.sql(f"EXPLAIN (FORMAT JSON) {sql}").to_arrow().column("json")[0].as_py())
    assert data["analyzed"] is False
    _check_complete(html, data)
    assert "plan only" in html and "slowest stage" not in html  # nothing ran: no hot spots
    assert 'class="stage slowest"' not in html
    assert html == con.explain(sql, format="html")
    # EXPLAIN ANALYZE in HTML: the same stages, with figures.
    analyzed = con.sql(f"EXPLAIN (ANALYZE, FORMAT HTML) {sql}").to_arrow().column("html")[0]
    text = analyzed.as_py()
    assert "rows 200,000" in text  # the scan read every row
    assert "slowest stage" in text and "skew" in text


def test_result_explain_analyze_formats(reservations_dir: Path) -> None:
    con = shoal.connect(partitions=3)
    con.register_parquet("reservations", reservations_dir)
    result = con.sql("SELECT issuer, count(*) FROM reservations GROUP BY issuer")
    data = json.loads(result.explain_analyze(format="json"))
    assert data == json.loads(result.explain_analyze_json())
    html = result.explain_analyze(format="html")
    _check_complete(html, data)
    assert result.explain_analyze() == result.explain_analyze("text")
    with pytest.raises(shoal.UserError, match="unknown explain format"):
        result.explain_analyze(format="svg")
    # Figures drawn are the JSON's: each exchange's row count appears on its label.
    for stage in data["stages"]:
        if stage["exchange"]:
            assert f"{stage['exchange']['rows']:,} rows" in html


def test_hot_spots_are_marked() -> None:
    """A hand-made graph: stage 1 is busiest once waits are subtracted, stage 0's
    exchange is skewed 4x, and one operator spilled."""

    def op(text: str, depth: int, **extra: Any) -> dict[str, Any]:
        return {"operator": text, "depth": depth, "rows": 10, "seconds_inclusive": 0.1, **extra}

    def ex(rows: list[int], wait: float, skew: float) -> dict[str, Any]:
        return {
            "kind": "hash", "rows": sum(rows), "bytes": 1000, "rows_per_partition": rows,
            "buffer_high_water_bytes": 10, "producer_blocked_seconds": 0.0,
            "consumer_wait_seconds": wait, "skew": skew,
        }  # fmt: skip

    spec = {"kind": "hash", "keys": ["k"], "partitions": 2}
    data = {
        "analyzed": True,
        "seconds": 3.0,
        "stages": [
            {"stage": 2, "partitions": 1, "output": "result", "output_spec": None,
             "consumer": None, "inputs": [0, 1], "tasks": 1, "seconds": 3.0,
             "operators": [op("HashJoin[inner] keys=[k = k]", 0, spilled_bytes=4096),
                           op("ExchangeRead from=stage 0", 1), op("ExchangeRead from=stage 1", 1)],
             "exchange": None},
            {"stage": 1, "partitions": 2, "output": "HashRepartition[k] x2", "output_spec": spec,
             "consumer": 2, "inputs": [], "tasks": 2, "seconds": 2.5,
             "operators": [op("Scan b", 0)], "exchange": ex([50, 50], 5.0, 1.0)},
            {"stage": 0, "partitions": 2, "output": "HashRepartition[k] x2", "output_spec": spec,
             "consumer": 2, "inputs": [], "tasks": 2, "seconds": 1.0,
             "operators": [op("Scan a", 0)], "exchange": ex([80, 20], 0.2, 1.6)},
        ],
    }  # fmt: skip
    busy = busy_seconds(data)
    assert busy[2] == 0.0  # it waited on its inputs all along (3.0 - 5.2, clamped)
    assert busy[1] == 2.5 and busy[0] == 1.0
    hot = find_hot_spots(data)
    assert hot.slowest_stage == 1
    assert hot.most_skewed_exchange == 0 and hot.max_skew == 1.6
    assert hot.skew_alarming
    assert hot.spills == ((2, 0),)
    html = render_html(data)
    _check_complete(html, data)
    assert re.search(r'<g id="stage-1" class="stage slowest">', html)
    assert re.search(r'<g id="exchange-0-2" class="exchange kind-hash skewed">', html)
    assert "most skewed exchange" in html and "SPILL 4.0 KiB" in html
    assert "spill: stage 2" in html
    # Text from the plan is escaped, never markup.
    data["stages"][1]["operators"][0]["operator"] = "Scan <b>&"
    assert "Scan &lt;b&gt;&amp;" in render_html(data)


def test_cli_explain_html(tmp_path: Path, reservations_dir: Path) -> None:
    out = tmp_path / "plan.html"
    proc = subprocess.run(
        [
            sys.executable, "-m", "shoal.cli", "explain", "--analyze", "--html", str(out),
            "SELECT issuer, count(*) FROM r GROUP BY issuer", "--table", f"r={reservations_dir}",
            "--partitions", "2",
        ],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "wrote" in proc.stdout
    html = out.read_text()
    assert _stage_ids(html) and _exchange_ids(html) and "slowest stage" in html


def _screenshot(html_path: Path, png_path: Path, width: int, height: int) -> None:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory() as profile:
        proc = subprocess.run(
            [
                CHROMIUM, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                "--no-first-run", "--disable-background-networking", "--disable-component-update",
                "--disable-sync", "--hide-scrollbars", f"--user-data-dir={profile}",
                f"--screenshot={png_path}", f"--window-size={width},{height}",
                html_path.as_uri(),
            ],
            capture_output=True, text=True, timeout=180, check=False,
        )  # fmt: skip
    assert proc.returncode == 0 and png_path.exists(), proc.stderr[-2000:]


@pytest.mark.slow
@pytest.mark.parametrize("q", [5, 21])
def test_tpch_picture_rendered_by_chromium(q: int, tpch_sf01_dir: Path, tmp_path: Path) -> None:
    if CHROMIUM is None:
        message = "Debian's chromium is not installed (make test installs it)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    from PIL import Image

    con = tpch_connection(tpch_sf01_dir, partitions=2)
    result = con.sql(query_text(q))
    data = json.loads(result.explain_analyze_json())
    html = result.explain_analyze(format="html")
    _check_complete(html, data)
    html_path = tmp_path / f"q{q}.html"
    html_path.write_text(html)
    size = re.search(r'<svg class="graph" width="(\d+)" height="(\d+)"', html)
    assert size is not None
    width, height = int(size.group(1)) + 40, int(size.group(2)) + 360
    png = tmp_path / f"q{q}.png"
    _screenshot(html_path, png, width, height)
    image = Image.open(png).convert("RGB")
    assert image.size == (width, height)
    # Not blank: many colours, a fair share of non-white pixels, and the exchange
    # colours (hash blue / broadcast purple) somewhere in the picture.
    small = image.resize((width // 4, height // 4))
    pixels = list(small.get_flattened_data())
    non_white = sum(1 for p in pixels if sum(p) < 720)
    assert non_white > 0.03 * len(pixels)
    assert len(set(pixels)) > 50
    kinds = {(37, 99, 235), (124, 58, 237)}
    full = set(image.get_flattened_data())
    assert full & kinds, "no exchange arrow colour in the picture"
    if os.environ.get("SHOAL_UPDATE_DOCS"):
        # Regenerate the README's pictures: palette PNGs keep them small.
        image.quantize(colors=64).save(DOCS / f"tpch-q{q}-stage-graph.png", optimize=True)
