"""decontaminate and dedup from the command line: unchanged outputs in the input's format, bad
input named by file and line (or counted with --skip-bad), the provenance guard, atomic outputs
that never replace an input, the working or home directory, or a folder that is not their own."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from curation_fixtures import MT_BENCH_LIKE, mt_bench_file, write_jsonl

from plamo_fast.cli import main
from plamo_fast.outputs import MARKER

LEAK = MT_BENCH_LIKE[0]["turns"][0]


def run(*args) -> int:
    return main([str(a) for a in (*args, "-q")])


def records():
    return [
        {"messages": [{"role": "user", "content": "猫について教えて"}], "x": 1.50},
        {"messages": [{"role": "user", "content": f"Please: {LEAK}"}]},
        {"prompt": "ＡＢＣとは？", "completion": "..."},
    ]


def test_decontaminate_keeps_lines_byte_for_byte(tmp_path):
    bench = mt_bench_file(tmp_path / "mt_bench")
    data = tmp_path / "train.jsonl"
    lines = [json.dumps(r, ensure_ascii=False, indent=None) for r in records()]
    lines[0] = lines[0].replace(", ", ",   ")  # odd spacing survives
    data.write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    out = tmp_path / "clean.jsonl"
    assert (
        run("decontaminate", data, "--bench", bench, "-o", out, "--report", tmp_path / "r.jsonl")
        == 0
    )
    assert out.read_text(encoding="utf-8") == lines[0] + "\n" + lines[2] + "\n"
    assert json.loads((tmp_path / "r.jsonl").read_text())["line"] == 2
    assert run("decontaminate", data, "--bench", bench, "-o", out) == 1  # exists
    assert run("decontaminate", data, "--bench", bench, "-o", out, "--overwrite") == 0


def test_decontaminate_parquet_and_several_inputs(tmp_path):
    bench = mt_bench_file(tmp_path / "mt_bench")
    table = pa.Table.from_pylist([{"prompt": "hello", "n": 1}, {"prompt": LEAK, "n": 2}])
    pq.write_table(table, tmp_path / "a.parquet")
    write_jsonl(tmp_path / "b.jsonl", records())
    out = tmp_path / "out"
    assert run("decontaminate", tmp_path / "a.parquet", tmp_path / "b.jsonl", "--bench", bench,
               "-o", out) == 0  # fmt: skip
    kept = pq.read_table(out / "a.parquet")
    assert kept.schema == table.schema and kept.to_pylist() == [{"prompt": "hello", "n": 1}]
    assert len((out / "b.jsonl").read_text().splitlines()) == 2


@pytest.mark.parametrize(
    "content, message",
    [
        (b'{"prompt": "ok"}\n{"prompt": \n', r"train.jsonl:2: malformed JSON"),
        (b'{"prompt": "ok"}\n{"other": 1}\n', r"train.jsonl:2: no user text"),
        (b'{"prompt": "ok"}\n{"prompt": "\xff\xfe"}\n', r"train.jsonl:2: invalid UTF-8"),
        (b"", r"train.jsonl: empty file"),
        (b'{"prompt": "ok"}\n[1, 2]\n', r"train.jsonl:2: expected a JSON object"),
    ],
)
@pytest.mark.parametrize("command", ["decontaminate", "dedup"])
def test_bad_input_is_named_or_counted(tmp_path, capsys, content, message, command):
    bench = mt_bench_file(tmp_path / "mt_bench")
    data = tmp_path / "train.jsonl"
    data.write_bytes(content)
    extra = ["--bench", bench] if command == "decontaminate" else []
    out = tmp_path / "out.jsonl"
    assert run(command, data, *extra, "-o", out) == 1
    assert re.search(message, capsys.readouterr().err)
    assert not out.exists() and not list(tmp_path.glob(".out.jsonl.partial*"))
    if not content:  # nothing left to keep: an error unless --allow-empty
        assert run(command, data, *extra, "-o", out, "--skip-bad") == 1
        assert (
            f"{command}: read 1 records but kept none (dropped: bad_records_skipped 1); first "
            f"bad record: {data}: empty file (no records); nothing was written (pass "
            "--allow-empty" in capsys.readouterr().err
        )
        assert not out.exists() and not list(tmp_path.glob(".out.jsonl.partial*"))
    allow = ["--allow-empty"] if not content else []
    assert run(command, data, *extra, "-o", out, "--skip-bad", *allow) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert json.loads(err[-1])["bad_records_skipped"] == 1
    warning = (
        f"plamo-fast {command}: warning: dropped 1 of 2 records (50.0%): bad_records_skipped 1"
        if content
        else f"plamo-fast {command}: warning: dropped 1 of 1 records (100.0%): "
        "bad_records_skipped 1"
    )
    assert warning in err
    assert out.read_text() == ('{"prompt": "ok"}\n' if content else "")


def leaks(n: int) -> list[dict]:
    return [{"prompt": f"({i}) {LEAK}"} for i in range(n)]


def test_decontaminate_that_keeps_nothing_fails_unless_allow_empty(tmp_path, capsys):
    """Every record a leak, or refused by the provenance guard: exit 1 with the reason and no
    output or report; --allow-empty writes the empty output."""
    bench = mt_bench_file(tmp_path / "mt_bench")
    data = write_jsonl(tmp_path / "train.jsonl", leaks(2))
    out, report = tmp_path / "out.jsonl", tmp_path / "r.jsonl"
    args = ["decontaminate", data, "--bench", bench, "-o", out, "--report", report]
    assert run(*args) == 1
    assert (
        "decontaminate: read 2 records but kept none (dropped: benchmark_leak 2); nothing was "
        "written (pass --allow-empty to write an empty output)" in capsys.readouterr().err
    )
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mt_bench", "train.jsonl"]
    assert run(*args, "--allow-empty") == 0
    assert out.read_text() == "" and len(report.read_text().splitlines()) == 2
    assert "warning: dropped 2 of 2 records (100.0%): benchmark_leak 2" in capsys.readouterr().err
    clean = write_jsonl(tmp_path / "clean.jsonl", [{"prompt": "猫について教えて"}])
    guarded = ["decontaminate", clean, "--bench", bench, "-o", tmp_path / "g.jsonl"]
    assert run(*guarded, "--commercial-only") == 1  # no license known for it
    assert "read 1 records but kept none (dropped: provenance 1)" in capsys.readouterr().err
    assert not (tmp_path / "g.jsonl").exists()


def test_decontaminate_warns_once_when_over_a_tenth_is_removed(tmp_path, capsys):
    bench = mt_bench_file(tmp_path / "mt_bench")
    rows = [{"prompt": f"猫について教えて {i}"} for i in range(9)]
    data = write_jsonl(tmp_path / "train.jsonl", rows + leaks(1))
    assert run("decontaminate", data, "--bench", bench, "-o", tmp_path / "a.jsonl") == 0
    assert "warning" not in capsys.readouterr().err  # 1 of 10: not more than a tenth
    data = write_jsonl(tmp_path / "train.jsonl", rows + leaks(2))
    assert run("decontaminate", data, "--bench", bench, "-o", tmp_path / "b.jsonl") == 0
    warnings = [x for x in capsys.readouterr().err.splitlines() if "warning" in x]
    assert warnings == [
        "plamo-fast decontaminate: warning: dropped 2 of 11 records (18.2%): benchmark_leak 2"
    ]


def test_dedup_that_keeps_nothing_fails_unless_allow_empty(tmp_path, capsys):
    """dedup keeps one record per cluster, so it keeps none only when every record was refused
    (bad, or by the provenance guard). Duplicates over a tenth of the input get the warning
    (a --key most records share collapses them)."""
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a"}, {"prompt": "b"}])
    out = tmp_path / "o.jsonl"
    assert run("dedup", data, "-o", out, "--commercial-only") == 1
    assert "dedup: read 2 records but kept none (dropped: provenance 2)" in capsys.readouterr().err
    assert not out.exists()
    assert run("dedup", data, "-o", out, "--commercial-only", "--allow-empty") == 0
    assert out.read_text() == ""
    same = write_jsonl(
        tmp_path / "s.jsonl", [{"prompt": f"q{i}", "category": "qa"} for i in range(5)]
    )
    assert run("dedup", same, "-o", tmp_path / "s_out.jsonl", "--key", "category") == 0
    assert (
        "plamo-fast dedup: warning: dropped 4 of 5 records (80.0%): duplicate 4"
        in capsys.readouterr().err
    )


def test_reports_name_json_array_elements_as_records(tmp_path):
    """A JSON array's records are named by element (``record``), JSONL's by ``line``: in the
    dedup cluster report, the decontaminate report and the provenance lines."""
    bench = mt_bench_file(tmp_path / "mt_bench")
    rows = [{"prompt": "hello"}, {"prompt": LEAK}, {"prompt": "hello"},
            {"prompt": "x", "model": "gpt-4-0613"}]  # fmt: skip
    array = tmp_path / "a.json"
    array.write_text(json.dumps(rows, indent=2), encoding="utf-8")
    report = tmp_path / "r.jsonl"
    assert run("dedup", array, "-o", tmp_path / "o.json", "--report", report) == 0
    guarded, cluster = [json.loads(x) for x in report.read_text().splitlines()]
    assert guarded["record"] == 4 and "line" not in guarded
    assert cluster["kept"] == {"file": str(array), "record": 1}
    assert [(r["file"], r["record"]) for r in cluster["removed"]] == [(str(array), 3)]
    assert run("decontaminate", array, "--bench", bench, "-o", tmp_path / "c.json",
               "--report", report, "--overwrite") == 0  # fmt: skip
    guarded, leak = [json.loads(x) for x in report.read_text().splitlines()]
    assert (guarded["record"], leak["record"]) == (4, 2)
    assert "line" not in guarded and "line" not in leak
    assert "proprietary model" in guarded["reason"] and leak["kind"] == "exact"


def prompts(folder: Path) -> list[str]:
    return [
        json.loads(x)["prompt"] for p in folder.glob("*.jsonl") for x in p.read_text().splitlines()
    ]


def test_provenance_guard(tmp_path, capsys):
    bench = mt_bench_file(tmp_path / "mt_bench")
    write_jsonl(tmp_path / "oasst.jsonl", [{"prompt": "a"}, {"prompt": "b", "model": "gpt-4-0613"}])
    write_jsonl(tmp_path / "nc.jsonl", [{"prompt": "c"}, {"prompt": "d", "license": "mit"}])
    write_jsonl(tmp_path / "tagged.jsonl", [{"prompt": "e", "source": "dolly"}, {"prompt": "f"}])
    registry = tmp_path / "sources.yaml"
    registry.write_text(
        "sources:\n  - match: 'oasst*'\n    license: apache-2.0\n"
        "  - match: 'nc*'\n    license: cc-by-nc-4.0\n"
        "  - source: dolly\n    license: cc-by-sa-3.0\n"
    )
    inputs = [tmp_path / n for n in ("oasst.jsonl", "nc.jsonl", "tagged.jsonl")]
    out = tmp_path / "out"
    args = ["--sources", registry, "--commercial-only", "--report", tmp_path / "r.jsonl"]
    assert run("decontaminate", *inputs, "--bench", bench, "-o", out, *args) == 0
    assert sorted(prompts(out)) == ["a", "d", "e"]
    reasons = [json.loads(x)["reason"] for x in (tmp_path / "r.jsonl").read_text().splitlines()]
    assert any("proprietary model (gpt-4-0613)" in r for r in reasons)
    assert any("cc-by-nc-4.0" in r for r in reasons)
    assert any("no license known" in r for r in reasons)
    flags = ["--license", "oasst*=apache-2.0", "--license", "tagged*=cc-by-nc-sa-4.0"]
    assert run("dedup", *inputs, "-o", tmp_path / "f", "--commercial-only", *flags) == 0
    assert sorted(prompts(tmp_path / "f")) == ["a", "d"]
    assert run("dedup", *inputs, "-o", tmp_path / "g", "--license", "nonsense") == 1
    assert run("dedup", *inputs, "-o", tmp_path / "d", "--keep-proprietary") == 0
    assert len(prompts(tmp_path / "d")) == 6


def test_dedup_cli_exact_and_near(tmp_path, capsys):
    base = (
        "東京は日本の首都であり、世界でも有数の大都市として知られています。人口は約1400万人で、"
        "江戸時代には江戸と呼ばれ、徳川幕府が置かれました。明治時代に東京と改称されました。"
    )
    rows = [
        {"instruction": base, "input": ""},
        {"instruction": "まったく別の質問です。富士山の高さは何メートルですか。", "input": ""},
        {"instruction": base.replace("。", "！"), "input": ""},  # exact after normalization
        {"instruction": base.replace("1400万人", "1300万人"), "input": ""},  # near
    ]
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    out, report = tmp_path / "o.jsonl", tmp_path / "clusters.jsonl"
    assert run("dedup", data, "-o", out, "--report", report) == 0
    assert len(out.read_text().splitlines()) == 3
    assert run("dedup", data, "-o", out, "--near", "--overwrite", "--report", report,
               "--overwrite") == 0  # fmt: skip
    assert [json.loads(x)["instruction"] for x in out.read_text().splitlines()] == [
        rows[0]["instruction"], rows[1]["instruction"],
    ]  # fmt: skip
    (cluster,) = [json.loads(x) for x in report.read_text().splitlines()]
    assert cluster["kept"] == {"file": str(data), "line": 1}
    assert [r["line"] for r in cluster["removed"]] == [3, 4]
    summary = json.loads(capsys.readouterr().err.strip().splitlines()[-1])
    assert summary["lsh"] == {"bands": 18, "rows": 6}


def test_help_lists_the_curation_commands(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    assert "decontaminate" in text and "dedup" in text


def test_output_never_finished_looking_on_failure(tmp_path):
    data = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "a"}, {"nothing": 1}])
    assert run("dedup", data, "-o", tmp_path / "o.jsonl") == 1
    assert list(tmp_path.iterdir()) == [Path(tmp_path / "d.jsonl")]


def test_outputs_never_overwrite_inputs_or_each_other(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    a = write_jsonl(data / "a.jsonl", [{"prompt": "a"}])
    b = write_jsonl(data / "b.jsonl", [{"prompt": "b"}])
    (data / "NOTES.md").write_text("keep me")
    for args, message in [
        (["-o", data, "--overwrite"], "holds the input"),
        (["-o", tmp_path / "x.jsonl"], "names a file"),
        (["-o", tmp_path / "o", "--report", tmp_path / "o" / "r.jsonl"], "inside the output"),
        (["-o", tmp_path / "o", "--report", a, "--overwrite"], "is the input"),
        (["-o", tmp_path / "o", "--report", tmp_path / "o"], "report"),
    ]:
        assert run("dedup", a, b, *args) == 1
        assert message in capsys.readouterr().err
    assert run("dedup", a, "-o", a, "--overwrite") == 1
    assert "is the input" in capsys.readouterr().err
    assert sorted(p.name for p in data.iterdir()) == ["NOTES.md", "a.jsonl", "b.jsonl"]
    assert a.read_text() == '{"prompt": "a"}\n'


def test_nulls_tool_calls_and_content_parts_are_not_bad_records(tmp_path):
    bench = mt_bench_file(tmp_path / "mt_bench")
    rows = [
        {"prompt": "hello there", "messages": None},
        {"messages": [{"role": "user", "content": LEAK},
                      {"role": "assistant", "content": None, "tool_calls": [{"id": "1"}]}]},
        {"messages": [{"role": "user", "content": [{"type": "text", "text": LEAK}]}]},
        {"conversations": [{"from": "human", "value": "hi", "role": None, "content": None}]},
    ]  # fmt: skip
    data = write_jsonl(tmp_path / "d.jsonl", rows)
    assert run("decontaminate", data, "--bench", bench, "-o", tmp_path / "o.jsonl") == 0
    kept = [json.loads(x) for x in (tmp_path / "o.jsonl").read_text().splitlines()]
    assert kept == [rows[0], rows[3]]
    table = pa.Table.from_pylist([{"prompt": "x", "messages": None}, {"prompt": None,
        "messages": [{"role": "user", "content": "y"}]}])  # fmt: skip
    pq.write_table(table, tmp_path / "mixed.parquet")
    assert run("dedup", tmp_path / "mixed.parquet", "-o", tmp_path / "m.parquet") == 0
    assert pq.read_table(tmp_path / "m.parquet").num_rows == 2


@pytest.mark.parametrize(
    "name, content, message",
    [
        ("s.jsonl", b'{"prompt": "ok"}\n{"prompt": "bad \\ud800 x"}\n', r"s.jsonl:2: .*surrogate"),
        ("r.jsonl", b'{"prompt": "ok"}\n' + b"[" * 100000 + b"\n", r"r.jsonl:2: .*nested"),
    ],
)
def test_hostile_lines_are_named_and_skippable(tmp_path, capsys, name, content, message):
    data = tmp_path / name
    data.write_bytes(content)
    assert run("dedup", data, "-o", tmp_path / "o.jsonl") == 1
    assert re.search(message, capsys.readouterr().err)
    assert run("dedup", data, "-o", tmp_path / "o.jsonl", "--skip-bad") == 0


@pytest.mark.parametrize("content", [b"", b"PAR1 not really parquet"])
def test_broken_parquet_is_named(tmp_path, capsys, content):
    data = tmp_path / "broken.parquet"
    data.write_bytes(content)
    assert run("dedup", data, "-o", tmp_path / "o.parquet") == 1
    err = capsys.readouterr().err
    assert "broken.parquet" in err and ("empty file" in err or "unreadable Parquet" in err)


def command_args(command: str, tmp_path: Path) -> list:
    """The input and options of ``command`` (decontaminate needs a benchmark folder)."""
    data = write_jsonl(tmp_path / "train.jsonl", [{"prompt": "hello"}, {"prompt": LEAK}])
    if command == "dedup":
        return [data]
    mt_bench_file(tmp_path / "bench" / "mt_bench")
    return [data, "--bench", tmp_path / "bench"]


@pytest.mark.parametrize("command", ["dedup", "decontaminate"])
def test_output_may_not_be_the_working_or_home_directory(tmp_path, capsys, monkeypatch, command):
    args = command_args(command, tmp_path)
    work = tmp_path / "work"
    (work / "notes").mkdir(parents=True)
    monkeypatch.chdir(work)
    for out in (".", work, tmp_path):  # the working directory or a folder above it
        assert run(command, *args, "-o", out, "--overwrite") == 1
        assert "the current directory" in capsys.readouterr().err
    home = tmp_path / "home"
    (home / "keep.txt").parent.mkdir()
    (home / "keep.txt").write_text("mine")
    monkeypatch.setenv("HOME", str(home))
    assert run(command, *args, "-o", home, "--overwrite") == 1
    assert "a home directory" in capsys.readouterr().err
    assert run(command, *args, "-o", tmp_path / "r", "--report", home, "--overwrite") == 1
    assert "a home directory" in capsys.readouterr().err
    assert (home / "keep.txt").read_text() == "mine" and (work / "notes").is_dir()
    assert sorted(p.name for p in work.iterdir()) == ["notes"]


def test_decontaminate_output_never_inside_or_over_a_benchmark(tmp_path, capsys):
    data, _, bench = command_args("decontaminate", tmp_path)
    for out, message in [
        (bench, "is the input"),
        (tmp_path, "holds the input"),
        (bench / "mt_bench", "inside the input folder"),
        (bench / "clean", "inside the input folder"),
    ]:
        assert run("decontaminate", data, "--bench", bench, "-o", out, "--overwrite") == 1
        assert message in capsys.readouterr().err
    report = ["--report", bench / "mt_bench" / "question.jsonl", "--overwrite"]
    assert run("decontaminate", data, "--bench", f"mt={bench}", "-o", tmp_path / "o", *report) == 1
    assert "inside the input folder" in capsys.readouterr().err
    assert sorted(p.name for p in bench.rglob("*")) == ["mt_bench", "question.jsonl"]


@pytest.mark.parametrize("command", ["dedup", "decontaminate"])
def test_overwrite_replaces_only_our_own_output_of_the_same_command(tmp_path, capsys, command):
    args = command_args(command, tmp_path)
    other = "decontaminate" if command == "dedup" else "dedup"
    foreign = tmp_path / "results"
    foreign.mkdir()
    (foreign / "paper.tex").write_text("months of work")
    assert run(command, *args, "-o", foreign, "--overwrite") == 1
    assert "is not an output of plamo-fast" in capsys.readouterr().err
    assert (foreign / "paper.tex").read_text() == "months of work"
    theirs = tmp_path / "theirs"
    assert run(other, *command_args(other, tmp_path), "-o", theirs) == 0
    assert run(command, *args, "-o", theirs, "--overwrite") == 1
    assert f"output of plamo-fast {other}, not of {command}" in capsys.readouterr().err
    ours = tmp_path / "ours"
    assert run(command, *args, "-o", ours) == 0
    assert json.loads((ours / MARKER).read_text())["command"] == command
    (ours / "train.jsonl").write_text("stale")
    assert run(command, *args, "-o", ours) == 1  # exists
    assert run(command, *args, "-o", ours, "--overwrite") == 0
    assert (ours / "train.jsonl").read_text().startswith('{"prompt": "hello"}')
    assert not list(tmp_path.glob(".*partial*")) and not list(tmp_path.glob(".*old*"))
