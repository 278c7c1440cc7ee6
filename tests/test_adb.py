"""`edgezoo bench --device adb[:SERIAL]`: LiteRT's benchmark_model on an Android device. The parser
is held to benchmark_model's own output (tests/fixtures/benchmark_model/, as the tool printed it on
devices); without a device, or without adb, the run says so in one row and one line."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgezoo.bench_results import read_bench
from edgezoo.devices.adb import parse_benchmark_output, parse_device

OUTPUTS = Path(__file__).parent / "fixtures" / "benchmark_model"


def test_parser_reads_the_summary_the_timed_runs_and_memory():
    plain = parse_benchmark_output((OUTPUTS / "qemu_mobilenet_v1.txt").read_text())
    assert plain["avg_us"] == 2.95034e6 and plain["init_us"] == 17187 and plain["first_us"] == 3512391
    assert plain["runs"] == 50 and plain["min_us"] == 2727568 and plain["max_us"] == 3189954  # the timed runs' line, not the warm-up's
    assert (plain["memory_init_mb"], plain["memory_overall_mb"]) == (4.21094, 46.0859)

    phone = parse_benchmark_output((OUTPUTS / "android_yolov5s.txt").read_text())
    assert phone["avg_us"] == 249684 and phone["std_us"] == 1442 and phone["memory_overall_mb"] == 138.809

    logcat = parse_benchmark_output((OUTPUTS / "android_logcat.txt").read_text())
    assert logcat["median_us"] == 141253 and logcat["p95_us"] == 187533 and logcat["runs"] == 25 and logcat["warmup_avg_us"] == 211669


def test_parser_names_the_tools_own_failure():
    with pytest.raises(ValueError, match="Could not open '/data/local/tmp/nope.tflite'|Benchmarking failed"):
        parse_benchmark_output((OUTPUTS / "missing_model.txt").read_text())


def test_device_names():
    assert parse_device("adb") is None and parse_device("adb:emulator-5554") == "emulator-5554"
    with pytest.raises(Exception, match="adb:SERIAL"):
        parse_device("adb:")


def test_no_device_or_no_adb_is_one_row_and_one_line(cli, zoo_export, tmp_path):
    spec, result = zoo_export("cnn")
    run = cli("bench", result.out_dir, "--device", "adb", "--threads", "1", "--out", tmp_path / "b", "--no-plots")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stdout + run.stderr
    [row] = read_bench(tmp_path / "b" / "bench.json").rows
    assert row.status == "failed" and row.device == "adb"
    if shutil.which("adb") is None:
        assert "no adb on this host" in row.error
    else:  # a real adb with nothing attached (CI has no phone)
        assert "no Android device attached" in row.error or "attached (" in row.error

    run = cli("bench", result.out_dir, "--device", "adb:bad serial!")
    assert run.returncode == 2 and "adb:SERIAL" in run.stderr
