"""The native gather writes only into separate, writable output arrays: an output that shares
memory with an input or with another output is refused before anything is copied."""

from __future__ import annotations

import numpy as np
import pytest

from plamo_fast import _native

TOKENS = np.arange(10, 16, dtype=np.int32)
OFFSETS = np.array([0, 2, 3, 6], dtype=np.int64)
ORDER = np.array([2, 0, 1], dtype=np.int64)


def outputs(n: int = 6):
    return [np.full(n, 7, dtype=np.int32) for _ in range(3)]


def test_gathers_into_separate_outputs_and_inputs_may_be_one_array():
    ids, labels, positions = outputs()
    _native.gather_documents(TOKENS, TOKENS, OFFSETS, ORDER, ids, labels, positions)
    assert ids.tolist() == [13, 14, 15, 10, 11, 12]
    assert labels.tolist() == [-100, 14, 15, -100, 11, -100]
    assert positions.tolist() == [0, 1, 2, 0, 1, 0]


def test_an_output_sharing_memory_is_refused_and_nothing_is_written():
    tokens = TOKENS.copy()
    ids, labels, positions = outputs()
    with pytest.raises(ValueError, match="out_ids shares memory with tokens"):
        _native.gather_documents(tokens, TOKENS, OFFSETS, ORDER, tokens, labels, positions)
    assert tokens.tolist() == TOKENS.tolist()
    block = np.zeros(11, dtype=np.int32)
    with pytest.raises(ValueError, match="out_labels shares memory with out_ids"):
        _native.gather_documents(TOKENS, TOKENS, OFFSETS, ORDER, block[:6], block[5:], positions)
    with pytest.raises(ValueError, match="out_positions shares memory with order"):
        order = ORDER.copy()
        _native.gather_documents(TOKENS, TOKENS, OFFSETS, order, ids, labels, order.view(np.int32))
    assert not block.any() and (labels == 7).all()


def test_read_only_or_strided_outputs_are_refused():
    ids, labels, positions = outputs()
    ids.flags.writeable = False
    with pytest.raises(ValueError, match="out_ids must be writable"):
        _native.gather_documents(TOKENS, TOKENS, OFFSETS, ORDER, ids, labels, positions)
    strided = np.zeros(12, dtype=np.int32)[::2]
    with pytest.raises(ValueError, match="out_ids must be C-contiguous"):
        _native.gather_documents(TOKENS, TOKENS, OFFSETS, ORDER, strided, labels, positions)


def spill(tmp_path, tokens: np.ndarray, labels: np.ndarray):
    paths = tmp_path / "tokens.i32", tmp_path / "labels.i32"
    for path, values in zip(paths, (tokens, labels), strict=True):
        path.write_bytes(values.astype("<i4").tobytes())
    return paths


def test_gathering_from_spill_files_equals_gathering_from_memory(tmp_path):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, 300)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    tokens = rng.integers(-(2**31), 2**31, int(offsets[-1]), dtype=np.int64).astype(np.int32)
    labels = np.where(rng.random(len(tokens)) < 0.5, -100, tokens).astype(np.int32)
    order = rng.permutation(300)[:200].astype(np.int64)
    n = int(lengths[order].sum())
    expected, got = outputs(n), outputs(n)
    _native.gather_documents(tokens, labels, offsets, order, *expected)
    _native.gather_spilled(*spill(tmp_path, tokens, labels), offsets, order, *got)
    assert all(np.array_equal(a, b) for a, b in zip(expected, got, strict=True))


def test_spill_files_are_checked_against_the_offsets(tmp_path):
    paths = spill(tmp_path, TOKENS, TOKENS)
    ids, labels, positions = outputs()
    with pytest.raises(ValueError, match="outside the 6 tokens"):
        _native.gather_spilled(*paths, OFFSETS + 1, ORDER, ids, labels, positions)
    paths[1].write_bytes(b"\0" * 20)
    with pytest.raises(ValueError, match="differ in length"):
        _native.gather_spilled(*paths, OFFSETS, ORDER, ids, labels, positions)
    with pytest.raises(ValueError, match="out_ids must be writable"):
        ids.flags.writeable = False
        _native.gather_spilled(
            *spill(tmp_path, TOKENS, TOKENS), OFFSETS, ORDER, ids, labels, positions
        )
    with pytest.raises(FileNotFoundError, match="missing"):
        _native.gather_spilled(tmp_path / "missing", paths[1], OFFSETS, ORDER, *outputs())


def reference_trained(ids, ids_off, labels, lab_off, limit):
    """The counts the checks of ``tokenized_batch`` allow, or None when a row is refused."""
    counts = []
    for r in range(len(ids_off) - 1):
        row_ids = ids[ids_off[r] : ids_off[r + 1]]
        row_labels = labels[lab_off[r] : lab_off[r + 1]]
        targets = row_labels != -100
        if (
            not len(row_ids)
            or len(row_ids) != len(row_labels)
            or ((row_ids < 0) | (row_ids >= limit)).any()
            or ((row_labels[targets] < 0) | (row_labels[targets] >= limit)).any()
        ):
            return None
        counts.append(int(targets[1:].sum()))
    return counts


@pytest.mark.parametrize("dtype", [np.int32, np.int64])
def test_pretokenized_counts_match_the_checks(dtype):
    """Trained tokens per row read straight from flat values and offsets (int32 or int64, as
    Arrow holds them); any refused row turns the whole batch away (the caller names it)."""
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 50, 300)
    offsets = np.concatenate([[0], np.cumsum(lengths)]).astype(np.int64)
    ids = rng.integers(0, 100, int(offsets[-1])).astype(dtype)
    labels = np.where(rng.random(len(ids)) < 0.5, ids, -100).astype(dtype)

    def counts(ids, labels, lab_off=offsets, limit=100):
        got = _native.pretokenized_trained_counts(ids, offsets, labels, lab_off, limit)
        return None if got is None else np.frombuffer(got, dtype="<i8").tolist()

    expected = reference_trained(ids, offsets, labels, offsets, 100)
    assert expected is not None and counts(ids, labels) == expected
    assert counts(ids, labels, limit=50) is None  # an id at or past the vocabulary
    for position, value in ((5, -1), (7, 100)):
        bad = ids.copy()
        bad[position] = value
        assert counts(bad, labels) is None
    for value in (-5, -101, 100):
        bad = labels.copy()
        bad[int(offsets[3]) + 1] = value
        assert counts(ids, bad) is None
    empty = offsets.copy()
    empty[1] = empty[0]  # row 0 empty, row 1 longer: labels rows differ in length too
    assert counts(ids, labels, lab_off=empty) is None


def test_pretokenized_counts_refuse_mixed_or_misshapen_buffers():
    ids = np.array([1, 2, 3], dtype=np.int32)
    offsets = np.array([0, 3], dtype=np.int64)
    with pytest.raises(BufferError):
        _native.pretokenized_trained_counts(ids, offsets, ids.astype(np.int64), offsets, 10)
    with pytest.raises(ValueError, match="offsets"):
        _native.pretokenized_trained_counts(ids, offsets, ids, offsets[:1], 10)
    past = np.array([0, 9], dtype=np.int64)  # a row past the values: refused, not read
    assert _native.pretokenized_trained_counts(ids, past, ids, past, 10) is None


def test_gathering_from_chunks_equals_gathering_from_one_array():
    rng = np.random.default_rng(0)
    tokens = rng.integers(0, 1000, 600, dtype=np.int32)
    labels = np.where(rng.random(600) < 0.3, -100, tokens).astype(np.int32)
    offsets = np.arange(0, 601, 20, dtype=np.int64)
    order = rng.permutation(30).astype(np.int64)
    want, got = outputs(600), outputs(600)
    _native.gather_documents(tokens, labels, offsets, order, *want)
    cuts = [0, 100, 100, 440, 600]  # document boundaries; one chunk empty
    chunks = [slice(a, b) for a, b in zip(cuts, cuts[1:], strict=False)]
    _native.gather_chunks(
        [tokens[c] for c in chunks], [labels[c] for c in chunks], offsets, order, *got
    )
    for a, b in zip(want, got, strict=True):
        assert a.tolist() == b.tolist()
    with pytest.raises(ValueError, match="does not lie within one chunk"):
        _native.gather_chunks(
            [tokens[:110], tokens[110:]], [labels[:110], labels[110:]], offsets, order, *got
        )
    with pytest.raises(ValueError, match="out_ids shares memory with tokens"):
        _native.gather_chunks([tokens], [labels], offsets, order, tokens, *got[1:])
