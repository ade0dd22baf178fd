"""The benchmark harness (`fastsoftmax bench`, `fastsoftmax bench --family`):
it runs, prints the rows it should and writes its Markdown and JSON files.
No timing is asserted, only the shape of the output."""
import json
import shlex

import pytest

from fastsoftmax import _bench_family, _timing
from fastsoftmax.__main__ import main


@pytest.fixture(autouse=True)
def short_turns(monkeypatch):
    """The output, not the figures, is tested here: no pauses, short samples."""
    monkeypatch.setattr(_timing, "QUIESCE_S", 0.0)
    monkeypatch.setattr(_timing, "BUDGET_S", 0.002)
    monkeypatch.setattr(_timing, "QUICK_BUDGET_S", 0.002)


def run(capsys, *argv):
    assert main(["bench", *argv]) == 0
    return capsys.readouterr().out


def table_rows(out, first_cell):
    return [line.split() for line in out.splitlines() if line.startswith(first_cell)]


def test_quick_bench_prints_a_row_per_array(capsys):
    out = run(capsys, "--quick", "--rounds", "1", "--dtype", "float32")
    rows = table_rows(out, "float32")
    shapes = [" ".join(r[2:4]) for r in rows]
    assert shapes == ["(2, 3)", "(4096, 1000)", "(1000000, 10)", "(64, 32000)",
                      "(1000, 4096)", "(1000, 4096)"]
    assert [r[4] for r in rows][-2:] == ["-1", "0"]  # (1000, 4096) over both axes
    assert all(r[1] == "softmax" and r[6] != "n/a" for r in rows)
    assert "summary float32, 1 thread(s)" in out


def test_quick_family_bench_prints_every_function_with_its_target(capsys):
    out = run(capsys, "--family", "--quick", "--rounds", "1")
    body = [line for line in out.splitlines() if line.startswith("float32 ")]
    assert len(body) == len(_bench_family.QUICK_GRID) * len(_bench_family.FUNCTIONS)
    for f in _bench_family.FUNCTIONS:
        rows = [line for line in body if f"  {f.name}  " in line + "  "]
        assert len(rows) == len(_bench_family.QUICK_GRID), f.name
        if f.target is not None:
            assert all(f"x {f.base}" in r and ("PASS" in r or "MISS" in r) for r in rows)
    assert "targets float32, 1 thread(s):" in out


def test_family_speed_up_columns_with_two_thread_counts(capsys):
    out = run(capsys, "--family", "--shapes", "64x10:0", "--threads", "1,2", "--rounds", "1",
              "--dtype", "float64")
    assert "1thr/this" in out and "base 1thr/this" in out
    rows = table_rows(out, "float64")
    assert {(r[3], r[4]) for r in rows} == {("-1", "1"), ("-1", "2"), ("0", "1"), ("0", "2")}


@pytest.mark.parametrize("family", [False, True])
def test_markdown_and_json_files(capsys, tmp_path, family):
    md, js = tmp_path / "bench.md", tmp_path / "bench.json"
    argv = ["--family"] * family + ["--shapes", "8x5", "--rounds", "1", "--dtype", "float32",
                                    "--markdown", str(md), "--json", str(js)]
    run(capsys, *argv)
    text = md.read_text()
    assert text.startswith("# fastsoftmax ")
    for field in ("command", "date", "machine", "software", "method"):
        assert f"- **{field}**: " in text
    assert "`fastsoftmax bench " + shlex.join(argv) + "`" in text
    assert _timing.machine()["cpu"] in text and "logical CPUs" in text
    for name in ("Python", "NumPy", "fastsoftmax", "kernel"):
        assert name in text
    assert "| dtype " in text and "| float32 " in text and "| (8, 5) " in text
    doc = json.loads(js.read_text())
    assert doc["rows"] and doc["arrays"][0]["candidates"]


def test_peers_are_named_in_the_header(capsys):
    out = run(capsys, "--peers", "--shapes", "2x3", "--rounds", "1", "--dtype", "float32")
    assert "peers:" in out


@pytest.mark.parametrize("argv", [["--shapes", "4x0"], ["--shapes", "7:0"], ["--threads", "0"],
                                  ["--dtype", "float128"], ["--op", "exp"], ["--rounds", "x"]])
def test_bad_arguments_exit_with_usage(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(["bench", *argv])
    assert info.value.code == 2


def test_rounds_rotate_the_order_and_keep_the_minimum():
    calls = []
    cands = [_timing.Candidate((name,), lambda name=name: calls.append(name)) for name in "abc"]
    for c in cands:
        c.n = 1
    assert _timing.measure(cands, budget=0.0, rounds=3) == 3
    assert calls == list("abc" "bca" "cab")
    for c in cands:
        assert len(c.rounds) == 3 and c.best == min(min(r) for r in c.rounds)
