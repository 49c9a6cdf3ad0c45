"""🤗 datasets in: a ``Dataset.save_to_disk`` folder is read wherever a JSONL/Parquet file is
(the one reader, ``curation_io.iter_input``): dedup, decontaminate, pack, sample's prompts and
SPIN's SFT records give what the same records give as JSONL; rows are named ``FOLDER:row N``.
The datasets are built here (no hub)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
from chat_fixtures import CONVERSATIONS, TEMPLATES, make_tokenizer, write_jsonl
from curation_fixtures import MT_BENCH_LIKE, mt_bench_file

from plamo_fast.cli import main
from plamo_fast.data.conversation import BadRecordError
from plamo_fast.data.curation_io import RecordWriter, Target, copy_records, iter_input, where
from plamo_fast.errors import UsageError

datasets = pytest.importorskip("datasets")
pq = pytest.importorskip("pyarrow.parquet")

RECORDS = [
    {"id": 1, "prompt": "日本の首都は？", "tags": ["geo"], "score": 0.5},
    {"id": 2, "prompt": "富士山の高さは？", "tags": [], "score": 1.5},
    {"id": 3, "prompt": "日本の首都は？", "tags": ["geo", "dup"], "score": 2.5},
    {"id": 4, "prompt": MT_BENCH_LIKE[0]["turns"][0], "tags": ["leak"], "score": 3.5},
]


@pytest.fixture(autouse=True)
def quiet_datasets():
    datasets.disable_progress_bars()
    yield
    datasets.enable_progress_bars()


def save(folder: Path, records: list[dict]) -> Path:
    datasets.Dataset.from_list(records).save_to_disk(str(folder))
    return folder


def run(*args) -> int:
    return main([str(a) for a in (*args, "-q")])


def test_a_saved_dataset_reads_like_the_same_records_as_lines(tmp_path: Path):
    folder = save(tmp_path / "ds", RECORDS)
    rows = list(iter_input(folder))
    assert [r.record for r in rows] == RECORDS
    assert where(folder, rows[2]) == f"{folder}:row 3"
    assert all(r.raw is None and r.unit != "record" for r in rows)


def test_folders_that_are_not_one_saved_dataset_are_refused(tmp_path: Path, monkeypatch):
    ds = datasets.Dataset.from_list(RECORDS)
    datasets.DatasetDict({"train": ds, "test": ds}).save_to_disk(str(tmp_path / "dd"))
    with pytest.raises(UsageError, match=r"DatasetDict \(splits: test, train\); give one split"):
        list(iter_input(tmp_path / "dd"))
    (tmp_path / "plain").mkdir()
    with pytest.raises(UsageError, match="not one written by Hugging Face datasets' save_to_disk"):
        list(iter_input(tmp_path / "plain"))
    broken = save(tmp_path / "broken", RECORDS)
    next(broken.glob("*.arrow")).write_bytes(b"not arrow")
    with pytest.raises(BadRecordError, match=f"^{broken}: unreadable datasets folder"):
        list(iter_input(broken))
    folder = save(tmp_path / "ds", RECORDS)
    monkeypatch.setitem(sys.modules, "datasets", None)  # as when it is not installed
    with pytest.raises(UsageError, match=r"needs the datasets package \(pip install 'plamo-fast"):
        list(iter_input(folder))


def test_kept_rows_are_written_with_the_datasets_schema_or_as_lines(tmp_path: Path):
    folder = save(tmp_path / "ds", RECORDS)
    copy_records(folder, Target(tmp_path / "k.parquet", "parquet"), [1, 3])
    kept = pq.read_table(tmp_path / "k.parquet")
    assert kept.to_pylist() == [RECORDS[0], RECORDS[2]]
    assert kept.schema.equals(datasets.load_from_disk(str(folder)).features.arrow_schema)
    copy_records(folder, Target(tmp_path / "k.jsonl", "jsonl"), [2, 4])
    lines = (tmp_path / "k.jsonl").read_text(encoding="utf-8").splitlines()
    assert [json.loads(x) for x in lines] == [RECORDS[1], RECORDS[3]]
    writer = RecordWriter(folder, Target(tmp_path / "w.parquet", "parquet"))
    for row in iter_input(folder):
        writer.write(row)
    writer.close()
    assert pq.read_table(tmp_path / "w.parquet").to_pylist() == RECORDS


@pytest.mark.parametrize("suffix", [".parquet", ".jsonl"])
def test_dedup_of_a_saved_dataset_keeps_what_the_same_lines_keep(tmp_path: Path, suffix):
    folder = save(tmp_path / "ds", RECORDS)
    lines = write_jsonl(tmp_path / "ds.jsonl", RECORDS)
    assert run("dedup", lines, "-o", tmp_path / "from_lines.jsonl") == 0
    out = tmp_path / f"from_ds{suffix}"
    assert run("dedup", folder, "-o", out) == 0
    expected = [json.loads(x) for x in (tmp_path / "from_lines.jsonl").read_text().splitlines()]
    assert expected == [RECORDS[0], RECORDS[1], RECORDS[3]]
    if suffix == ".parquet":
        assert pq.read_table(out).to_pylist() == expected
    else:
        assert [json.loads(x) for x in out.read_text(encoding="utf-8").splitlines()] == expected
    # Several inputs go to a folder: the dataset as NAME.parquet, next to the JSONL file (whose
    # records all repeat the dataset's).
    assert run("dedup", folder, lines, "-o", tmp_path / "both") == 0
    names = sorted(p.name for p in (tmp_path / "both").iterdir() if not p.name.startswith("."))
    assert names == ["ds.jsonl", "ds.parquet"]
    assert pq.read_table(tmp_path / "both" / "ds.parquet").to_pylist() == expected
    assert (tmp_path / "both" / "ds.jsonl").read_text() == ""


def test_decontaminate_of_a_saved_dataset_and_bad_rows_named_by_row(tmp_path: Path, capsys):
    bench = mt_bench_file(tmp_path / "mt_bench")
    folder = save(tmp_path / "ds", RECORDS)
    out = tmp_path / "clean.parquet"
    assert run("decontaminate", folder, "--bench", bench, "-o", out) == 0
    assert pq.read_table(out).to_pylist() == RECORDS[:3]
    bad = save(tmp_path / "bad", [{"prompt": "ok"}, {"prompt": None}])
    assert run("dedup", bad, "-o", tmp_path / "x.parquet") == 1
    assert f"{bad}:row 2: no user text" in capsys.readouterr().err


def test_pack_of_a_saved_dataset_is_the_pack_of_the_same_lines(tmp_path: Path):
    pytest.importorskip("tokenizers")
    tokenizer = make_tokenizer(tmp_path / "tok", TEMPLATES["chatml"])
    records = [{"messages": c} for c in CONVERSATIONS * 3]
    lines = write_jsonl(tmp_path / "sft.jsonl", records)
    folder = save(tmp_path / "sft", records)
    for name, source in (("a", lines), ("b", folder)):
        # A mixture spec (FOLDER:2x), as training's data.raw takes.
        assert run("pack", f"{source}:2x", "--tokenizer", tokenizer, "-L", "96", "-o",
                   tmp_path / name) == 0  # fmt: skip
    assert pq.read_table(tmp_path / "a" / "data.parquet").equals(
        pq.read_table(tmp_path / "b" / "data.parquet")
    )
    report = json.loads((tmp_path / "b" / "pack_report.json").read_text())
    assert report["examples_read"] == len(records)
    assert run("pack", tmp_path / "none", "--tokenizer", tokenizer, "-L", "96", "-o",
               tmp_path / "c") == 1  # fmt: skip


def test_sample_prompts_and_spin_records_from_a_saved_dataset(tmp_path: Path):
    from plamo_fast.sample.records import read_prompts

    folder = save(tmp_path / "prompts", RECORDS[:2])
    prompts, bad = read_prompts(folder, skip_bad=False)
    assert [m for _, m in prompts] == [
        [{"role": "user", "content": r["prompt"]}] for r in RECORDS[:2]
    ]
    assert bad == [] and prompts[0][0]["id"] == 1
    with pytest.raises(BadRecordError, match=r"bad:row 1: expected 'prompt'"):
        read_prompts(save(tmp_path / "bad", [{"other": 1}]), skip_bad=False)
    sft = save(tmp_path / "sft", [{"id": "s0", "messages": [
        {"role": "user", "content": "q0"}, {"role": "assistant", "content": "ref0"}]}])  # fmt: skip
    samples = write_jsonl(tmp_path / "c.jsonl", [{
        "prompt_index": 0, "prompt_messages": [{"role": "user", "content": "q0"}],
        "candidates": [{"text": "mine0"}]}])  # fmt: skip
    spin = tmp_path / "spin.jsonl"
    assert main(["pairs", str(samples), "--spin", str(sft), "-o", str(spin)]) == 0
    (pair,) = [json.loads(x) for x in spin.read_text().splitlines()]
    assert pair["id"] == "s0" and pair["rejected"][0]["content"] == "mine0"


def test_the_python_api_takes_and_gives_a_dataset(tmp_path: Path):
    import plamo_fast

    ds = datasets.Dataset.from_list(RECORDS)
    lines = write_jsonl(tmp_path / "ds.jsonl", RECORDS)
    assert run("dedup", lines, "-o", tmp_path / "cli.jsonl") == 0
    expected = [json.loads(x) for x in (tmp_path / "cli.jsonl").read_text().splitlines()]
    got = plamo_fast.dedup(ds)
    assert isinstance(got, datasets.Dataset) and got.to_list() == expected
    assert got.features == ds.features
    # A selection (an indices mapping over the same Arrow data) is read in its own order.
    reordered = plamo_fast.dedup(ds.select([2, 1, 0]))
    assert [r["id"] for r in reordered.to_list()] == [3, 2]
    # A saved folder, by path.
    folder = save(tmp_path / "saved", RECORDS)
    assert plamo_fast.dedup(folder).to_pylist() == expected


@pytest.mark.parametrize("source", ["jsonl", "parquet", "hf"])
def test_output_format_hf_writes_a_saved_dataset_folder(tmp_path: Path, source: str):
    """--output-format hf: dedup and decontaminate write the kept records as a save_to_disk
    folder (a saved dataset's and a Parquet file's with their features), atomically, with our
    marker; several inputs give a folder of them, one per input."""
    lines = write_jsonl(tmp_path / "ds.jsonl", RECORDS)
    given = {
        "jsonl": lines,
        "parquet": tmp_path / "ds.parquet",
        "hf": tmp_path / "ds",
    }[source]
    if source == "parquet":
        pq.write_table(datasets.Dataset.from_list(RECORDS).data.table, given)
    elif source == "hf":
        save(given, RECORDS)
    assert run("dedup", given, "-o", tmp_path / "kept", "--output-format", "hf") == 0
    kept = datasets.load_from_disk(str(tmp_path / "kept"))
    assert kept.to_list() == [RECORDS[0], RECORDS[1], RECORDS[3]]
    assert kept.features == datasets.Dataset.from_list(RECORDS).features
    assert (tmp_path / "kept" / ".plamo-fast-output.json").is_file()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    bench = mt_bench_file(tmp_path / "mt_bench")
    assert run("decontaminate", given, "--bench", bench, "-o", tmp_path / "clean",
               "--output-format", "hf") == 0  # fmt: skip
    assert datasets.load_from_disk(str(tmp_path / "clean")).to_list() == RECORDS[:3]
    # Several inputs: one saved dataset each, named after the input.
    other = write_jsonl(tmp_path / "other.jsonl", [{"id": 9, "prompt": "新しい質問"}])
    assert run("dedup", given, other, "-o", tmp_path / "both", "--output-format", "hf") == 0
    names = sorted(p.name for p in (tmp_path / "both").iterdir() if not p.name.startswith("."))
    assert names == ["ds", "other"]
    assert datasets.load_from_disk(str(tmp_path / "both" / "other")).to_list() == [
        {"id": 9, "prompt": "新しい質問"}
    ]


def test_output_format_hf_refuses_a_file_name_and_unknown_formats(tmp_path: Path, capsys):
    lines = write_jsonl(tmp_path / "ds.jsonl", RECORDS)
    assert run("dedup", lines, "-o", tmp_path / "kept.jsonl", "--output-format", "hf") == 1
    assert "--output-format hf writes a saved dataset folder" in capsys.readouterr().err
    assert run("dedup", lines, "-o", tmp_path / "kept", "--output-format", "csv") == 1
    assert "--output-format csv: expected one of" in capsys.readouterr().err
    assert not (tmp_path / "kept").exists() and not (tmp_path / "kept.jsonl").exists()


def hub_cache_entry(cache: Path, repo_id: str, records: list[dict]) -> None:
    """What ``datasets.load_dataset(repo_id)`` leaves in the datasets cache ``cache`` after a
    download (the prepared Arrow file that offline mode reads back), made here from local JSON
    lines with the packaged json builder, in the folder the cache gives ``repo_id`` (no hub)."""
    from datasets.packaged_modules.json.json import Json

    org, name = repo_id.split("/")
    cache.mkdir(parents=True)
    source = write_jsonl(cache.parent / f"{name}-source.jsonl", records)
    builder = Json(cache_dir=str(cache), dataset_name=f"{org}___{name}", config_id="default",
                   hash="0123abcd", data_files={"train": [str(source)]})  # fmt: skip
    builder.download_and_prepare()
    folder = Path(builder.cache_dir)
    (folder / f"{org}___{name}-train.arrow").rename(folder / f"{name}-train.arrow")


@pytest.fixture
def no_network(monkeypatch):
    import socket

    def refuse(*args, **kwargs):
        raise AssertionError("the network was used")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)


def test_a_hub_dataset_name_reads_the_local_cache_offline(tmp_path, monkeypatch, capsys,
                                                          no_network):  # fmt: skip
    cache = tmp_path / "hf-cache"
    hub_cache_entry(cache, "local/tiny", RECORDS)
    monkeypatch.chdir(tmp_path)  # the name is no path here
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", cache)
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    rows = list(iter_input(Path("local/tiny")))
    assert [r.record for r in rows] == RECORDS
    assert where(Path("local/tiny"), rows[2]) == "local/tiny:row 3"
    from plamo_fast.sample.records import read_prompts  # sample's prompts: the same reader

    prompts, _ = read_prompts(Path("local/tiny"), skip_bad=False)
    assert [record["id"] for record, _ in prompts] == [1, 2, 3, 4]
    assert run("dedup", "local/tiny", "-o", tmp_path / "kept.jsonl") == 0
    kept = [json.loads(x) for x in (tmp_path / "kept.jsonl").read_text().splitlines()]
    assert kept == [RECORDS[0], RECORDS[1], RECORDS[3]]
    assert run("dedup", "local/tiny:train", "tiny-source.jsonl", "-o", tmp_path / "both") == 0
    assert pq.read_table(tmp_path / "both" / "tiny.parquet").to_pylist() == kept
    capsys.readouterr()
    assert run("dedup", "local/nope", "-o", tmp_path / "x.jsonl") == 1
    err = capsys.readouterr().err
    assert (
        "local/nope: not a file, not a saved dataset, not in the hub cache (HF_HUB_OFFLINE=1" in err
    )
    assert run("dedup", "local/tiny:test", "-o", tmp_path / "x.jsonl") == 1
    assert "has the splits train; name one, e.g. local/tiny:train" in capsys.readouterr().err
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", False)  # never online: refused
    assert run("dedup", "local/tiny", "-o", tmp_path / "x.jsonl") == 1
    assert "read from the local cache only, in offline mode (HF_HUB_OFFLINE=1" in (
        capsys.readouterr().err
    )
    assert not (tmp_path / "x.jsonl").exists()


def test_a_hub_dataset_name_with_hf_hub_offline_in_the_environment(tmp_path: Path):
    """As a user runs it: HF_HOME's cache, HF_HUB_OFFLINE=1, the name on the command line."""
    import os
    import subprocess

    hub_cache_entry(tmp_path / "home" / "datasets", "local/tiny", RECORDS)
    env = {**os.environ, "HF_HOME": str(tmp_path / "home"), "HF_HUB_OFFLINE": "1"}
    env.pop("HF_DATASETS_CACHE", None)
    command = [sys.executable, "-m", "plamo_fast.cli", "dedup", "local/tiny", "-o", "kept.parquet",
               "-q"]  # fmt: skip
    done = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert pq.read_table(tmp_path / "kept.parquet").to_pylist() == [RECORDS[i] for i in (0, 1, 3)]
