"""The data-frame API (``plamo_fast.dedup`` / ``plamo_fast.pack``): a polars DataFrame or
LazyFrame, or an Arrow table, gives what the CLI gives on the same records as JSONL, back as
the same kind of table; clusters as columns; bad rows named by row; ``import plamo_fast``
stays light."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from chat_fixtures import CONVERSATIONS, TEMPLATES, make_tokenizer, write_jsonl
from curation_fixtures import MT_BENCH_LIKE, mt_bench_file

import plamo_fast
from plamo_fast.cli import main
from plamo_fast.data.conversation import BadRecordError

pl = pytest.importorskip("polars")
pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

BASE = (
    "The quick brown fox jumps over the lazy dog near the river bank at dawn, while the farmer "
    "walks his two old horses along the muddy road towards the village market in the valley"
)
ROWS = [
    {"id": 0, "prompt": BASE, "source": "a"},
    {"id": 1, "prompt": "日本の首都はどこですか？", "source": "b"},
    {"id": 2, "prompt": BASE.replace("two old", "three"), "source": "c"},  # near dup. of 0
    {"id": 3, "prompt": "日本の首都はどこですか？", "source": "d"},  # exact duplicate of 1
    {"id": 4, "prompt": "An unrelated question about prime numbers and their gaps", "source": "e"},
]


def cli_dedup(tmp_path: Path, records: list[dict], *options: str) -> tuple[list[dict], list]:
    data = write_jsonl(tmp_path / "cli.jsonl", records)
    out, report = tmp_path / "cli_out.jsonl", tmp_path / "cli_report.jsonl"
    assert main(["dedup", str(data), "-o", str(out), "--report", str(report), "-q",
                 *options]) == 0  # fmt: skip
    kept = [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()]
    return kept, [json.loads(x) for x in report.read_text(encoding="utf-8").splitlines()]


def test_dedup_of_a_dataframe_is_the_cli_dedup_of_the_same_lines(tmp_path: Path):
    df = pl.DataFrame(ROWS)
    expected, _ = cli_dedup(tmp_path, df.to_dicts(), "--near", "--threshold", "0.8")
    assert [r["id"] for r in expected] == [0, 1, 4]
    got = plamo_fast.dedup(df, near=True, threshold=0.8)
    assert isinstance(got, pl.DataFrame) and got.to_dicts() == expected
    assert got.schema == df.schema
    assert plamo_fast.dedup(df.lazy(), near=True).to_dicts() == expected
    table = plamo_fast.dedup(df.to_arrow(), near=True)
    assert isinstance(table, pa.Table) and table.to_pylist() == expected
    # Exact only (the CLI's default): the near duplicate stays.
    assert plamo_fast.dedup(df)["id"].to_list() == [0, 1, 2, 4]


def test_clusters_are_columns_of_every_row(tmp_path: Path):
    df = pl.DataFrame(ROWS)
    _, report = cli_dedup(tmp_path, df.to_dicts(), "--near")
    got = plamo_fast.dedup(df, near=True, clusters=True)
    assert got.columns == [*df.columns, "kept", "cluster_id", "jaccard"]
    assert got["kept"].to_list() == [True, True, False, False, True]
    assert got["cluster_id"].to_list() == [0, 1, 0, 1, 4]
    near = {c["kept"]["line"]: c["removed"][0]["jaccard"] for c in report}
    assert got["jaccard"].to_list() == [None, None, near[1], 1.0, None]
    assert 0.8 <= near[1] < 1.0
    assert got.filter(pl.col("kept")).drop("kept", "cluster_id", "jaccard").to_dicts() == [
        ROWS[0],
        ROWS[1],
        ROWS[4],
    ]
    # A file by its path: an Arrow table, the same rows and columns.
    by_path = plamo_fast.dedup(tmp_path / "cli.jsonl", near=True, clusters=True)
    assert pl.from_arrow(by_path).equals(got)
    with pytest.raises(plamo_fast.PlamoFastError, match="has a column 'kept'"):
        plamo_fast.dedup(df.with_columns(kept=1), clusters=True)


def test_decontaminate_of_a_dataframe_is_the_cli_run_with_its_report_as_a_frame(tmp_path):
    bench = mt_bench_file(tmp_path / "mt_bench")
    leak = {"id": 9, "prompt": "Q: " + MT_BENCH_LIKE[0]["turns"][0], "source": "x"}
    df = pl.DataFrame([*ROWS[:2], leak, ROWS[4]])
    data = write_jsonl(tmp_path / "cli.jsonl", df.to_dicts())
    out, report = tmp_path / "cli_out.jsonl", tmp_path / "cli_report.jsonl"
    assert main(["decontaminate", str(data), "--bench", str(bench), "-o", str(out),
                 "--report", str(report), "-q"]) == 0  # fmt: skip
    kept, removed = plamo_fast.decontaminate(df, bench)
    assert kept.to_dicts() == [json.loads(x) for x in out.read_text().splitlines()]
    assert kept["id"].to_list() == [0, 1, 4]
    (line,) = [json.loads(x) for x in report.read_text().splitlines()]
    assert line["line"] == 3 and line["file"] == str(data)
    expected = {k: v for k, v in line.items() if k not in ("file", "line")}
    assert removed.to_dicts() == [{"index": 2, **expected}]


def test_dedup_and_decontaminate_write_no_file(tmp_path: Path, monkeypatch):
    """The frame's Arrow data goes to the CLI code in memory: no temporary folder, no Parquet
    file, and TMPDIR left empty (near dedup's n-gram spill is unlinked as soon as it is open)."""
    import tempfile

    bench = mt_bench_file(tmp_path / "mt_bench")
    leak = {"id": 9, "prompt": "Q: " + MT_BENCH_LIKE[0]["turns"][0], "source": "x"}
    df = pl.DataFrame([*ROWS, leak])
    expected, _ = cli_dedup(tmp_path, df.to_dicts(), "--near")
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", None)  # gettempdir() reads TMPDIR again

    def refuse(*args, **kwargs):
        raise AssertionError("a file was written")

    for module, name in ((pq, "write_table"), (pq, "ParquetWriter"), (tempfile, "mkdtemp"),
                         (tempfile, "mkstemp"), (tempfile, "NamedTemporaryFile")):  # fmt: skip
        monkeypatch.setattr(module, name, refuse)
    assert plamo_fast.dedup(df, near=True).to_dicts() == expected
    assert plamo_fast.dedup(df, near=True, clusters=True)["kept"].sum() == len(expected)
    kept, removed = plamo_fast.decontaminate(df, bench)
    assert kept["id"].to_list() == [0, 1, 2, 3, 4] and removed["index"].to_list() == [5]
    assert list(scratch.iterdir()) == []


def test_a_bad_row_is_named_by_its_row():
    df = pl.DataFrame([{"prompt": "ok"}, {"prompt": None}])
    with pytest.raises(BadRecordError, match=r"^row 2: no user text"):
        plamo_fast.dedup(df)
    with pytest.raises(plamo_fast.PlamoFastError, match="expected a polars DataFrame"):
        plamo_fast.dedup([{"prompt": "ok"}])


def test_pack_of_a_dataframe_is_the_cli_pack_of_the_same_lines(tmp_path: Path):
    pytest.importorskip("tokenizers")
    tokenizer = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    df = pl.DataFrame({"messages": CONVERSATIONS * 4})
    data = write_jsonl(tmp_path / "sft.jsonl", df.to_dicts())
    assert main(["pack", str(data), "--tokenizer", str(tokenizer), "-L", "96",
                 "-o", str(tmp_path / "packed"), "-q"]) == 0  # fmt: skip
    expected = pq.read_table(tmp_path / "packed" / "data.parquet")
    got = plamo_fast.pack(df, tokenizer=tokenizer, max_length=96)
    assert isinstance(got, pl.DataFrame) and got.equals(pl.from_arrow(expected))
    assert got.height > 1


def test_import_plamo_fast_loads_neither_polars_nor_pyarrow():
    code = (
        "import sys, plamo_fast; plamo_fast.dedup; "
        "print(sorted(m for m in ('polars', 'pyarrow', 'datasets', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
