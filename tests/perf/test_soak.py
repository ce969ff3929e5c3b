"""A very short soak, for real: Binance, OKX and Kraken simulators, the engine, samples, drift."""

import pytest

from bench.soak import PROFILES, Profile, drift, parse_duration, run_soak, soak_markdown, write_soak
from meltica_nb.errors import ConfigError


@pytest.mark.parametrize(("text", "seconds"), [("90s", 90), ("30m", 1800), ("2h", 7200),
                                               ("1.5", 1.5), (" 2m ", 120)])
def test_parse_duration(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["", "10d", "m", "-5s"])
def test_bad_durations_are_refused(text):
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def test_drift_compares_first_and_last_window_after_warm_up():
    samples = [{"t_s": float(t), "rss_mb": 100.0 + t, "latency_p99_us": 50.0,
                "pool_in_use_pct": 1.0, "frames_per_s": 1000.0, "gc_pauses": 1,
                "gc_longest_ms": float(t)} for t in range(20)]
    d = drift(samples)
    assert d["warm_up_samples"] == 4 and d["window_samples"] == 1
    assert d["rss_mb"]["first"] == 104.0 and d["rss_mb"]["last"] == 119.0
    assert d["rss_mb"]["slope_per_hour"] == pytest.approx(3600.0)
    assert d["latency_p99_us"]["change"] == 0.0
    assert d["rss_flat"] is False and d["gc_pauses"] == 16 and d["gc_longest_ms"] == 19.0


def test_a_short_soak_samples_three_venue_protocols_and_writes_its_report(tmp_path,
                                                                          no_thread_leak):
    profile = Profile(rate=300, consumers=3, instruments=6)
    result = run_soak(3.0, profile, sample_s=0.5)
    assert result["unreturned_slots"] == 0
    assert len(result["samples"]) >= 4
    assert sum(s["frames_per_s"] for s in result["samples"]) > 0
    venues = result["venues"]
    assert set(venues) == {"binance", "okx", "kraken"}
    assert all(row["frames"] > 0 and row["events"] > 0 for row in venues.values()), venues
    assert all(row["checksum_fail"] == 0 for row in venues.values()), venues
    assert {"rss_mb", "latency_p99_us", "pool_in_use_pct", "rss_flat"} <= set(result["drift"])
    paths = write_soak(result, tmp_path, "meltica bench --soak 3s")
    assert {p.name for p in paths} >= {"soak.json", "soak.md"}
    text = (tmp_path / "soak.md").read_text()
    assert "6 instruments across 3 simulated venues (binance, okx, kraken)" in text
    assert "- per venue: binance " in text and "; kraken " in text
    assert soak_markdown({**result, "command": "c", "date": "d",
                          "machine": {"cpu": "x", "nproc": 2}}).startswith("# Soak: 3 s")


def test_profiles_are_the_seeds_shape():
    assert PROFILES["standard"] == Profile(1000, 10, 50, ("binance", "okx", "kraken"))
    assert PROFILES["heavy"].rate > PROFILES["standard"].rate


def test_an_unknown_soak_venue_is_refused():
    with pytest.raises(ConfigError, match="soak venues must be some of"):
        Profile(venues=("binance", "coinbase"))


def test_the_soak_command_writes_its_report(tmp_path, capsys, no_thread_leak):
    from meltica_nb import cli

    argv = ["bench", "--soak", "2s", "--venues", "kraken", "--out", str(tmp_path)]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Soak: 2 s")
    assert "`meltica bench --soak 2s --venues kraken --out" in out
    assert "50 instruments across 1 simulated venues (kraken)" in out
    assert (tmp_path / "soak.json").exists()
