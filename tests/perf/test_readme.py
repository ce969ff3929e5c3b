"""The README's performance section, generated between markers."""

from bench.readme import END, START, main, section, update

from .helpers import sample_report


def test_section_has_machine_command_date_and_ratios():
    text = section(sample_report(), "bench/results/x/report.json")
    assert text.startswith(START) and text.endswith(END)
    assert "Test CPU, 2 cores" in text and "`meltica bench --quick`" in text
    assert "2026-11-22 00:00 UTC" in text
    assert "| pool | pool batch 64 events/s | engine: 9,000,000 |" in text
    assert "| live | latency p99 @1000 msgs/s | engine: 525 | python tuned: 1,575 |" in text


def test_update_replaces_between_markers_and_appends_once(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text("# project\n\nintro\n")
    update(readme, f"{START}\nfirst\n{END}")
    update(readme, f"{START}\nsecond\n{END}")
    body = readme.read_text()
    assert body.count("## Performance") == 1 and "second" in body and "first" not in body
    assert body.startswith("# project\n\nintro\n")


def test_main_reads_a_report_file(tmp_path):
    sample_report().write(tmp_path)
    readme = tmp_path / "README.md"
    readme.write_text(f"a\n{START}\nold\n{END}\nb\n")
    assert main([str(tmp_path / "report.json"), "--readme", str(readme)]) == 0
    body = readme.read_text()
    assert body.startswith("a\n") and body.endswith("\nb\n") and "old" not in body
