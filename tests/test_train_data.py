"""Packed training data (train/data.py): the memory-mapped rows give exactly what the former
loader gave (rows and micro-batches), every validation error names its file and row, the digest
follows the content, a process does not hold the data in memory, and the mapped copy in a run
folder is made once (under a lock) and remade when its sources change."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from plamo_fast.data.packing import IGNORE_INDEX
from plamo_fast.errors import UsageError
from plamo_fast.train import data as train_data
from plamo_fast.train.data import CACHE_NAME, PackedRow, collate, load_packed

# --- the loader before issue 11, kept verbatim (less its validation) as the parity reference ---


def old_load_packed(paths: list[str], *, need_pairs: bool = False) -> list[PackedRow]:
    """Every row as Python lists, then int64 arrays (what training did before issue 11)."""
    import pyarrow.parquet as pq

    rows: list[PackedRow] = []
    for file in train_data.parquet_files(paths):
        table = pq.read_table(file)
        names = set(table.column_names) & {*train_data.REQUIRED, "pair_ids"}
        columns = {n: table.column(n).to_pylist() for n in names}
        for i in range(table.num_rows):
            rows.append(
                PackedRow(
                    *(np.asarray(columns[n][i], dtype=np.int64) for n in train_data.REQUIRED),
                    np.asarray(columns["pair_ids"][i], dtype=np.int64)
                    if "pair_ids" in columns
                    else None,
                )
            )
    return rows


def old_collate(rows: list[PackedRow], pad_id: int = 0) -> dict:
    import torch

    length = max(len(r.input_ids) for r in rows)
    ids = np.full((len(rows), length), pad_id, dtype=np.int64)
    labels = np.full((len(rows), length), IGNORE_INDEX, dtype=np.int64)
    positions = np.zeros((len(rows), length), dtype=np.int64)
    docs = []
    for b, r in enumerate(rows):
        n = len(r.input_ids)
        ids[b, :n] = r.input_ids
        labels[b, :n] = r.labels
        positions[b, :n] = r.position_ids
        positions[b, n:] = np.arange(length - n)
        start = 0
        for d, seg in enumerate(r.seq_lengths.tolist()):
            pair = int(r.pair_ids[d]) if r.pair_ids is not None else -1
            docs.append((b, start, seg, pair))
            start += seg
    return {
        "input_ids": torch.from_numpy(ids),
        "labels": torch.from_numpy(labels),
        "position_ids": torch.from_numpy(positions),
        "docs": docs,
    }


# --- packed data written directly with NumPy and pyarrow -------------------------------------


def random_packed_table(tokens: int, rng, *, max_length: int = 512, vocab: int = 1000,
                        pairs: bool = False, full_rows: bool = False):  # fmt: skip
    """A packed table of ``tokens`` tokens as ``pack`` lays it out: rows of at most
    ``max_length`` (exactly, when ``full_rows``), each cut into documents whose positions
    restart at 0 and whose first token and ~30% of the others are not trained."""
    import pyarrow as pa

    if full_rows:
        row_lengths = np.full(-(-tokens // max_length), max_length)
    else:
        row_lengths = rng.integers(max_length // 2, max_length + 1, tokens // (max_length // 2) + 1)
    row_ends = np.minimum(np.cumsum(row_lengths), tokens)
    row_offsets = np.concatenate([[0], row_ends[: np.searchsorted(row_ends, tokens) + 1]])
    cuts = rng.integers(1, tokens, max(1, tokens // (max_length // 3)))
    doc_offsets = np.union1d(row_offsets, cuts)
    seq = np.diff(doc_offsets).astype(np.int32)
    seq_offsets = np.searchsorted(doc_offsets, row_offsets).astype(np.int32)
    ids = rng.integers(0, vocab, tokens, dtype=np.int32)
    positions = (np.arange(tokens) - np.repeat(doc_offsets[:-1], seq)).astype(np.int32)
    labels = np.where(rng.random(tokens) < 0.3, IGNORE_INDEX, ids).astype(np.int32)
    labels[doc_offsets[:-1]] = IGNORE_INDEX
    offsets = pa.array(row_offsets.astype(np.int32))
    per_doc = pa.array(seq_offsets)
    columns = {
        "input_ids": pa.ListArray.from_arrays(offsets, pa.array(ids)),
        "labels": pa.ListArray.from_arrays(offsets, pa.array(labels)),
        "position_ids": pa.ListArray.from_arrays(offsets, pa.array(positions)),
        "seq_lengths": pa.ListArray.from_arrays(per_doc, pa.array(seq)),
        "doc_ids": pa.ListArray.from_arrays(per_doc, pa.array(np.arange(len(seq)))),
    }
    if pairs:
        pair_ids = np.arange(len(seq), dtype=np.int64) // 2
        columns["pair_ids"] = pa.ListArray.from_arrays(per_doc, pa.array(pair_ids))
    return pa.table(columns)


def write_random_packed(path: Path, tokens: int, *, seed: int = 0, group_tokens: int = 1 << 24,
                        **options) -> Path:  # fmt: skip
    """Writes ``tokens`` packed tokens to ``path`` as ``pack`` does (zstd, no dictionary, one row
    group per ``group_tokens``), generating one row group at a time."""
    import pyarrow.parquet as pq

    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for start in range(0, tokens, group_tokens):
        table = random_packed_table(min(group_tokens, tokens - start), rng, **options)
        if writer is None:
            writer = pq.ParquetWriter(path, table.schema, use_dictionary=False, compression="zstd")
        writer.write_table(table)
    writer.close()
    return path


def write_rows(path: Path, rows: list[dict], row_group_size: int | None = None) -> Path:
    """A Parquet file with the given rows (dicts of lists)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path.parent.mkdir(parents=True, exist_ok=True)
    names = list(rows[0]) if rows else list(train_data.REQUIRED)
    table = pa.table({n: pa.array([r[n] for r in rows], pa.list_(pa.int32())) for n in names})
    pq.write_table(table, path, row_group_size=row_group_size, compression="zstd")
    return path


def row(ids, labels, seq, **more) -> dict:
    """A row; positions restart per document where ``seq`` adds up to the row."""
    per_document = sum(seq) == len(ids) and min(seq, default=1) > 0
    positions = [p for n in seq for p in range(n)] if per_document else list(range(len(ids)))
    return {"input_ids": ids, "labels": labels, "position_ids": positions, "seq_lengths": seq,
            **more}  # fmt: skip


GOOD = row([5, 6, 7, 8], [-100, 6, -100, 8], [2, 2])


def assert_same_rows(new, old) -> None:
    assert len(new) == len(old)
    for a, b in zip(new, old, strict=True):
        for name in (*train_data.REQUIRED, "pair_ids"):
            x, y = getattr(a, name), getattr(b, name)
            assert (x is None) == (y is None), name
            if x is not None:
                assert np.array_equal(x, y), name


def assert_same_batches(new, old, batches) -> None:
    import torch

    for micro in batches:
        a, b = collate([new[i] for i in micro]), old_collate([old[i] for i in micro])
        assert a["docs"] == b["docs"]
        for key in ("input_ids", "labels", "position_ids"):
            assert a[key].dtype == b[key].dtype == torch.int64
            assert torch.equal(a[key], b[key]), key


# --- parity with the former loader ------------------------------------------------------------


@pytest.mark.parametrize("pairs", [False, True])
def test_rows_and_micro_batches_equal_the_former_loader(tmp_path, monkeypatch, pairs):
    """Several files, several row groups each, read in several batches (rows of one micro-batch
    come from different batches), SFT and DPO."""
    pytest.importorskip("torch")
    monkeypatch.setattr(train_data, "BATCH_TOKENS", 3000)
    files = [
        write_random_packed(
            tmp_path / "d" / f"part-{k}.parquet",
            20_000 + 7_000 * k,
            seed=k,
            group_tokens=8_000,
            max_length=300,
            pairs=pairs,
        )
        for k in range(3)
    ]
    paths = [str(files[0]), str(tmp_path / "d")]  # a file, then a folder (all three)
    rows, old = load_packed(paths, need_pairs=pairs), old_load_packed(paths)
    assert_same_rows(rows, old)
    rng = np.random.default_rng(0)
    batches = [rng.choice(len(old), size=k % 5 + 1, replace=False) for k in range(40)]
    assert_same_batches(rows, old, batches)
    assert_same_batches(rows, old, [range(len(old))])  # every row in one batch


@pytest.mark.parametrize("kind", ["sft", "dpo"])
def test_rows_of_real_pack_output_equal_the_former_loader(tmp_path, kind):
    pytest.importorskip("torch")
    from chat_fixtures import CHATML, CONVERSATIONS, make_tokenizer, write_jsonl

    from plamo_fast.data.pack import pack

    if kind == "sft":
        records = [{"messages": c} for c in CONVERSATIONS] * 3
    else:
        records = [
            {"prompt": c[:-1], "chosen": c[-1:], "rejected": [{**c[-1], "content": "No."}]}
            for c in CONVERSATIONS
            if c[-1]["role"] == "assistant"
        ] * 3
    model = make_tokenizer(tmp_path / "tok", CHATML)
    data = write_jsonl(tmp_path / "records.jsonl", records)
    pack([str(data)], model, tmp_path / "packed", max_length=128, kind=kind)
    paths = [str(tmp_path / "packed")]
    rows, old = load_packed(paths, need_pairs=kind == "dpo"), old_load_packed(paths)
    assert any(len(r.seq_lengths) > 1 for r in old)
    assert_same_rows(rows, old)
    assert_same_batches(rows, old, [[i] for i in range(len(old))] + [range(len(old))])


def test_collate_of_hand_made_rows_equals_the_former(tmp_path):
    """Callers build rows too (one per document, int64, even without documents)."""
    pytest.importorskip("torch")
    rows = [
        PackedRow(np.array([4, 5, 6]), np.array([-100, 5, 6]), np.arange(3), np.array([3])),
        PackedRow(np.array([7]), np.array([-100]), np.arange(1), np.array([], dtype=np.int64)),
        PackedRow(
            np.array([1, 2]),
            np.array([-100, 2]),
            np.zeros(2, int),
            np.array([1, 1]),
            np.array([3, -1]),
        ),  # fmt: skip
    ]
    assert_same_batches(rows, rows, [[0, 1], [2, 0, 1], [1]])


def test_rows_behave_as_a_sequence(tmp_path):
    pytest.importorskip("torch")
    path = write_rows(tmp_path / "a.parquet", [GOOD, row([1, 2, 3], [-100, 2, 3], [3])])
    rows = load_packed([str(path)])
    assert len(rows) == 2 and list(rows[-1].input_ids) == [1, 2, 3]
    assert [len(r.input_ids) for r in rows] == [4, 3]
    with pytest.raises(IndexError):
        _ = rows[2]
    assert collate(rows)["input_ids"].shape == (2, 4)
    # Rows are views into the mapping: read-only, owning nothing.
    view = rows[0].input_ids
    assert not view.flags.owndata and not view.flags.writeable
    assert rows[0].trained_tokens == 2


# --- validation ---------------------------------------------------------------------------


def refused(tmp_path, rows_or_path, *, need_pairs=False, **write) -> str:
    path = rows_or_path
    if not isinstance(path, Path):
        path = write_rows(tmp_path / "bad.parquet", rows_or_path, **write)
    with pytest.raises(UsageError) as info:
        load_packed([str(path)], need_pairs=need_pairs)
    return str(info.value)


def test_missing_columns_and_the_wrong_kind_are_refused(tmp_path):
    no_seq = {k: v for k, v in GOOD.items() if k != "seq_lengths"}
    path = tmp_path / "bad.parquet"
    assert refused(tmp_path, [no_seq]) == (
        f"{path}: not packed data, missing columns ['seq_lengths']"
    )
    assert refused(tmp_path, [GOOD], need_pairs=True) == (
        f"{path}: DPO needs rows packed with --kind dpo (no pair_ids)"
    )
    assert refused(tmp_path, [{**GOOD, "pair_ids": [0, 0]}]) == (
        f"{path}: DPO pairs (pair_ids); SFT needs rows packed with --kind sft"
    )
    floats = write_rows(tmp_path / "f.parquet", [GOOD])
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pq.read_table(floats)
    table = table.set_column(1, "labels", table["labels"].cast(pa.list_(pa.float32())))
    pq.write_table(table, floats)
    message = refused(tmp_path, floats)
    assert message.startswith(f"{floats}: column labels is list<")
    assert message.endswith("float>, expected lists of integers")


@pytest.mark.parametrize(
    ("bad", "reason"),
    [
        (row([1, 2, 3], [-100, 2, 3], [2]), "seq_lengths do not add up to the row"),
        (row([1, 2, 3], [-100, 2, 3], [4, -1]), "seq_lengths must be positive"),
        (
            {**row([1, 2, 3], [-100, 2, 3], [3]), "labels": [-100, 2]},
            "labels and input_ids differ in length",
        ),
        (
            {**row([1, 2, 3], [-100, 2, 3], [3]), "position_ids": [0, 1, 2, 3]},
            "position_ids and input_ids differ in length",
        ),
        ({**row([1, 2, 3], [-100, 2, 3], [3]), "labels": None}, "labels is null"),
        (
            {**row([1, 2, 3], [-100, 2, 3], [3]), "input_ids": [1, None, 3]},
            "input_ids holds nulls",
        ),
    ],
)
def test_a_bad_row_is_refused_with_its_file_and_row(tmp_path, monkeypatch, bad, reason):
    """The bad row is the 7th: in a later decoded batch and in the second row group."""
    monkeypatch.setattr(train_data, "BATCH_TOKENS", 10)
    path = tmp_path / "bad.parquet"
    message = refused(tmp_path, [GOOD] * 6 + [bad, GOOD], row_group_size=4)
    assert message == f"{path}: row 7: {reason}"


def test_pair_ids_must_give_one_pair_per_document(tmp_path):
    good = {**GOOD, "pair_ids": [0, 0]}
    bad = {**GOOD, "pair_ids": [0]}
    message = refused(tmp_path, [good, bad], need_pairs=True)
    assert (
        message == f"{tmp_path / 'bad.parquet'}: row 2: pair_ids and seq_lengths differ in length"
    )


def test_no_rows_and_no_trained_token_are_refused(tmp_path):
    path = write_rows(tmp_path / "bad.parquet", [])
    assert refused(tmp_path, path) == f"{path}: no rows"
    # A trained token only at a row's start predicts nothing: still no trained token.
    untrained = [row([1, 2], [1, -100], [2]), row([3], [3], [1])]
    assert refused(tmp_path, untrained) == (
        f"{tmp_path / 'bad.parquet'}: no trained token in any row (all labels are -100)"
    )


def test_token_ids_beyond_int32_are_refused(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "bad.parquet"
    table = pa.table({n: pa.array([v], pa.list_(pa.int64())) for n, v in GOOD.items()})
    ids = pa.array([[5, 2**40, 7, 8]], pa.list_(pa.int64()))
    pq.write_table(table.set_column(0, "input_ids", ids), path)
    assert refused(tmp_path, path).startswith(f"{path}: input_ids: values out of range for")


# --- digest ---------------------------------------------------------------------------------


def digest(tmp_path, rows: list[dict], name: str, **write) -> str:
    path = write_rows(tmp_path / name / "data.parquet", rows, **write)
    return load_packed([str(path)], need_pairs="pair_ids" in rows[0]).digest()


def test_the_digest_follows_every_value_and_row_boundary(tmp_path):
    a = row([5, 6, 7, 8], [-100, 6, -100, 8], [2, 2], pair_ids=[0, 0])
    b = row([1, 2, 3], [-100, 2, 3], [3], pair_ids=[1])
    base = digest(tmp_path, [a, b], "base")
    variants = {
        "token": [{**a, "input_ids": [5, 6, 7, 9]}, b],
        "label": [{**a, "labels": [-100, 6, 7, 8]}, b],
        "documents": [{**a, "seq_lengths": [1, 3], "position_ids": [0, 0, 1, 2]}, b],
        "positions": [{**a, "position_ids": [0, 1, 2, 3]}, b],
        "pair": [{**a, "pair_ids": [0, 2]}, b],
        "row boundary": [  # the same values in every column, split into rows differently
            row([5, 6], [-100, 6], [2], pair_ids=[0]),
            row([7, 8, 1, 2, 3], [-100, 8, -100, 2, 3], [2, 3], pair_ids=[0, 1]),
        ],
        "order": [b, a],
    }
    digests = {name: digest(tmp_path, rows, name) for name, rows in variants.items()}
    assert len({base, *digests.values()}) == len(variants) + 1, digests
    # The same rows in other row groups (and batches) give the same digest.
    assert digest(tmp_path, [a, b], "groups", row_group_size=1) == base
    assert len(base) == 64 and int(base, 16) >= 0


def test_the_digest_does_not_depend_on_how_rows_are_split_into_files(tmp_path, monkeypatch):
    import pyarrow.parquet as pq

    whole = write_random_packed(tmp_path / "one" / "data.parquet", 9_000, max_length=200)
    table = pq.read_table(whole)
    (tmp_path / "two").mkdir()
    pq.write_table(table.slice(0, 10), tmp_path / "two" / "a.parquet")
    pq.write_table(table.slice(10), tmp_path / "two" / "b.parquet")
    monkeypatch.setattr(train_data, "BATCH_TOKENS", 1000)
    one = load_packed([str(tmp_path / "one")]).digest()
    monkeypatch.setattr(train_data, "BATCH_TOKENS", 777)
    assert load_packed([str(tmp_path / "two")]).digest() == one


# --- memory ---------------------------------------------------------------------------------


def resident_peak_since_reset() -> int:
    """VmHWM in bytes, after resetting it to the current resident size."""
    Path("/proc/self/clear_refs").write_text("5")
    return status_kib("VmHWM") * 1024


def status_kib(key: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1])
    raise KeyError(key)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
def test_loading_and_reading_every_row_does_not_hold_the_data(tmp_path):
    """8M tokens are 96 MB in the three token columns (and about 1 GB as the Python lists the
    former loader made): loading them raises the process's peak resident memory by far less
    than the data, and reading every row (an epoch) by almost nothing."""
    tokens = 8 << 20
    path = write_random_packed(tmp_path / "big" / "data.parquet", tokens, max_length=2048,
                               group_tokens=1 << 20)  # fmt: skip
    warm = write_random_packed(tmp_path / "small" / "data.parquet", 10_000, max_length=2048)
    load_packed([str(warm)])  # imports and memory pools, which are not data
    data_bytes = tokens * 4 * 3
    before = resident_peak_since_reset()
    rows = load_packed([str(path)])
    loading = status_kib("VmHWM") * 1024 - before
    before = resident_peak_since_reset()
    total = sum(int(r.input_ids[-1]) + len(r.labels) for r in rows)  # touches every row
    reading = status_kib("VmHWM") * 1024 - before
    assert total > tokens
    # Converting decodes a quarter of a million tokens at a time (about 40 MiB at any size).
    # A loader that holds the rows raises it by at least the data's size (the former one by
    # 1119 MiB here); converting costs 40-55 MiB whatever the size, so bound it at 3/4.
    assert loading < data_bytes * 3 / 4, f"loading raised the peak by {loading / 2**20:.0f} MiB"
    assert reading < data_bytes / 16, f"reading raised the peak by {reading / 2**20:.0f} MiB"


# --- the mapped copy in a run folder ------------------------------------------------------------


def test_the_copy_in_a_run_folder_is_reused_until_its_source_changes(tmp_path, capsys):
    source = write_rows(tmp_path / "p" / "data.parquet", [GOOD, row([1, 2, 3], [-100, 2, 3], [3])])
    run = tmp_path / "out.run"
    first = load_packed([str(source)], cache_dir=run)
    assert "writing an uncompressed" in capsys.readouterr().out
    copy = run / CACHE_NAME
    inode = copy.stat().st_ino
    again = load_packed([str(source)], cache_dir=run)
    assert capsys.readouterr().out == ""  # reused
    assert copy.stat().st_ino == inode and again.digest() == first.digest()
    # The source is replaced (pack renames a new file into place): the copy is remade.
    write_rows(source, [GOOD, row([1, 2, 4], [-100, 2, 4], [3])])
    changed = load_packed([str(source)], cache_dir=run)
    assert "writing an uncompressed" in capsys.readouterr().out
    assert changed.digest() != first.digest()
    assert list(changed[1].input_ids) == [1, 2, 4]
    assert list(first[1].input_ids) == [1, 2, 3]  # the earlier mapping is still valid
    # A manifest that does not match the copy (an interrupted write) makes it again.
    (run / f"{CACHE_NAME}.json").write_text("{")
    load_packed([str(source)], cache_dir=run)
    assert "writing an uncompressed" in capsys.readouterr().out
    assert sorted(p.name for p in run.iterdir()) == [
        CACHE_NAME,
        f"{CACHE_NAME}.json",
        f"{CACHE_NAME}.lock",
    ]


def test_a_refused_source_leaves_no_copy(tmp_path):
    bad = write_rows(tmp_path / "bad.parquet", [row([1, 2, 3], [-100, 2, 3], [2])])
    with pytest.raises(UsageError, match="row 1: seq_lengths do not add up"):
        load_packed([str(bad)], cache_dir=tmp_path / "run")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [f"{CACHE_NAME}.lock"]


def test_without_a_run_folder_the_temporary_copy_is_unlinked(tmp_path, monkeypatch):
    import tempfile

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    source = write_rows(tmp_path / "a.parquet", [GOOD])
    rows = load_packed([str(source)])
    assert list((tmp_path / "tmp").iterdir()) == []
    assert list(rows[0].input_ids) == GOOD["input_ids"]  # the mapping outlives the name
    bad = write_rows(tmp_path / "b.parquet", [row([1, 2], [-100, 2], [1])])
    with pytest.raises(UsageError):
        load_packed([str(bad)])
    assert list((tmp_path / "tmp").iterdir()) == []


def test_processes_sharing_a_run_folder_convert_once(tmp_path):
    """Two processes start together (as the ranks of a launch do): one converts while the other
    waits on the lock, then both map the same copy."""
    source = write_random_packed(tmp_path / "p" / "data.parquet", 400_000, max_length=512)
    code = (
        "import sys; from plamo_fast.train.data import load_packed; "
        "rows = load_packed([sys.argv[1]], cache_dir=sys.argv[2]); print(len(rows), rows.digest())"
    )
    run = tmp_path / "out.run"
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", code, str(source), str(run)], stdout=subprocess.PIPE, text=True
        )
        for _ in range(2)
    ]
    outputs = [p.communicate(timeout=300)[0] for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    results = [o.splitlines()[-1] for o in outputs]
    assert results[0] == results[1]
    assert sum("writing an uncompressed" in o for o in outputs) == 1


def test_a_copy_that_does_not_fit_on_disk_is_refused_before_writing(tmp_path, monkeypatch):
    from types import SimpleNamespace

    source = write_rows(tmp_path / "a.parquet", [GOOD])
    monkeypatch.setattr(train_data.shutil, "disk_usage", lambda _: SimpleNamespace(free=1000))
    with pytest.raises(UsageError, match=r"needs about 0\.0 GiB and only 0\.0 GiB are free"):
        load_packed([str(source)], cache_dir=tmp_path / "run")
    assert not (tmp_path / "run" / CACHE_NAME).exists()


def test_loading_uses_only_what_windows_has(tmp_path, monkeypatch):
    """Windows has no ``fcntl``, no ``madvise`` and an ``mmap`` without ``prot``: the loader
    still maps the copy in a run folder (each process then converts by itself)."""
    import mmap

    real_mmap = mmap.mmap

    def windows_mmap(fileno, length, tagname=None, access=mmap.ACCESS_DEFAULT, offset=0):
        return real_mmap(fileno, length, access=access, offset=offset)

    monkeypatch.setitem(sys.modules, "fcntl", None)  # `import fcntl` raises ImportError
    monkeypatch.setattr(mmap, "mmap", windows_mmap)
    for name in ("MADV_RANDOM", "MADV_DONTNEED"):
        monkeypatch.delattr(mmap, name, raising=False)
    source = write_rows(tmp_path / "p" / "data.parquet", [GOOD, row([1, 2, 3], [-100, 2, 3], [3])])
    rows = load_packed([str(source)], cache_dir=tmp_path / "out.run")
    assert [list(r.input_ids) for r in rows] == [GOOD["input_ids"], [1, 2, 3]]
    assert load_packed([str(source)]).digest() == rows.digest()
