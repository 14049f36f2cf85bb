"""A smoke run of the benchmark (tiny counts), so bench/ keeps working. No timing is asserted."""

import importlib.util
import json
import os
import shutil
import subprocess
import sys

import pytest

from conftest import ROOT


@pytest.mark.slow
def test_benchmark_smoke_run_produces_every_scenario(tmp_path):
    out = tmp_path / "bench.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "run.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["list_latency"]) >= {"baseline", "ours", "ours_stateless", "peer"}
    assert set(results) >= {
        "list_latency",
        "list_throughput",
        "stream",
        "batch",
        "rss_idle_mb",
        "rss_load_mb",
        "startup_s",
        "machine",
    }
    assert set(results["list_throughput"]) == {"1", "8", "32"}
    for side in ("baseline", "ours", "peer"):
        assert results["list_latency"][side]["p50_ms"] > 0
        assert results["stream"]["paced"][side]["tokens"] == 50
    assert "| list_models p50 (ms) |" in out.with_suffix(".md").read_text()


def test_model_view_bench_counts_bytes_and_o200k_tokens_offline(tmp_path):
    out = tmp_path / "model_view.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "model_view.py"), "--no-peer", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=ROOT,
        env={**os.environ, "TIKTOKEN_CACHE_DIR": str(tmp_path / "tiktoken")},  # an empty cache: filled offline
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    ours = json.loads(out.read_text())["ours"]
    assert ours["tools"] == len(ours["per_tool"]) > 0
    assert ours["bytes"] == sum(t["bytes"] for t in ours["per_tool"])
    assert ours["tokens"] == sum(t["tokens"] for t in ours["per_tool"])
    assert all(0 < t["tokens"] < t["bytes"] for t in ours["per_tool"])


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server (apt-get install redis-server)")
@pytest.mark.skipif(importlib.util.find_spec("redis") is None, reason="pip install -r requirements-redis.txt")
def test_replicas_bench_measures_both_sides_and_redis_memory(tmp_path):
    out = tmp_path / "replicas.json"
    r = subprocess.run(
        [sys.executable, str(ROOT / "bench" / "replicas.py"), "--smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    results = json.loads(out.read_text())
    assert set(results["latency"]) == {"direct", "list_stateless", "list_session", "save_context", "load_context"}
    for name in ("list_stateless", "list_session", "save_context", "load_context"):
        row = results["latency"][name]
        assert row["without"]["p50_ms"] > 0 and row["with"]["p50_ms"] > 0
        assert row["redis_commands_per_call"] > 0  # the "with" side really went to Redis
    memory = results["memory"]
    assert memory["contexts"] == 20 and memory["bytes_per_context"] > memory["payload_json_bytes"] > 0
    assert memory["memory_usage_one_hash"] > memory["payload_json_bytes"]
    assert "| list_session |" in out.with_suffix(".md").read_text()
