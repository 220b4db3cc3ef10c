"""run_steps(row_offset=): a slice of rows computes exactly its rows of the
whole run, the property the dask path (docs/dask.md) is built on."""
import numpy as np
import pytest

import diffsde as ds
from diffsde._rng import STREAM_INITIAL, fill_normal, key_from_rng

from test_engine import SCORES, mixed_table

DTYPES = [np.float64, np.float32]


def _cuts(batch, seed):
    """Random row boundaries, including empty and one-row pieces."""
    rng = np.random.default_rng(seed)
    inner = np.sort(rng.integers(0, batch + 1, size=5))
    return np.unique(np.r_[0, inner, 1, batch - 1, batch])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("which", sorted(SCORES))
def test_row_ranges_run_with_their_offsets_concatenate_to_the_whole_run(which, dtype):
    score, make_table = SCORES[which]
    table = make_table()
    x = np.random.default_rng(5).standard_normal((203, 4)).astype(dtype)
    whole = ds.run_steps(x, table, score=score, rng=21, save=[0, 2, table.n_steps])
    cuts = _cuts(len(x), 1)
    pieces = [ds.run_steps(x[a:b], table, score=score, rng=21, save=[0, 2, table.n_steps], row_offset=a)
              for a, b in zip(cuts[:-1], cuts[1:])]
    np.testing.assert_array_equal(np.concatenate([p.x for p in pieces]), whole.x)
    np.testing.assert_array_equal(np.concatenate([p.xs for p in pieces], axis=1), whole.xs)
    # without the offset every piece would redraw the first rows' normals
    if which != "none" or table.n_noise_intervals:
        alone = ds.run_steps(x[cuts[2]:cuts[3]], table, score=score, rng=21).x
        assert not np.array_equal(alone, whole.x[cuts[2]:cuts[3]])


def test_event_axes_count_in_the_element_offset():
    table = mixed_table()
    x = np.random.default_rng(6).standard_normal((30, 2, 3))
    score = SCORES["python"][0]
    whole = ds.run_steps(x, table, score=score, rng=4).x
    parts = [ds.run_steps(x[a:b], table, score=score, rng=4, row_offset=a).x for a, b in ((0, 11), (11, 30))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_offsets_hold_with_a_progress_bar_and_any_block_size(capsys):
    table = mixed_table()
    x = np.random.default_rng(9).standard_normal((60, 3))
    score = ds.LinearScore(0.1, 2.0)
    whole = ds.run_steps(x, table, score=score, rng=6).x
    parts = [ds.run_steps(x[a:b], table, score=score, rng=6, row_offset=a, progress=True, block_rows=4).x
             for a, b in ((0, 23), (23, 60))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


def test_user_noise_rows_go_with_their_state_rows():
    table = mixed_table()
    x = np.random.default_rng(7).standard_normal((50, 3))
    noise = np.random.default_rng(8).standard_normal((table.n_noise_intervals, 50, 3))
    whole = ds.run_steps(x, table, score=ds.LinearScore(0.2, 1.5), rng=3, noise=noise).x
    parts = [ds.run_steps(x[a:b], table, score=ds.LinearScore(0.2, 1.5), rng=3, noise=noise[:, a:b],
                          row_offset=a).x for a, b in ((0, 17), (17, 50))]
    np.testing.assert_array_equal(np.concatenate(parts), whole)


@pytest.mark.parametrize("dtype", DTYPES)
def test_prior_samples_of_a_slice_are_the_slice_of_the_prior(dtype):
    key = key_from_rng(9)
    whole = fill_normal(np.empty((101, 3), dtype=dtype), key, STREAM_INITIAL)
    for a, b in ((0, 1), (1, 40), (40, 101)):
        part = fill_normal(np.empty((b - a, 3), dtype=dtype), key, STREAM_INITIAL, 0, a * 3)
        np.testing.assert_array_equal(part, whole[a:b])


@pytest.mark.parametrize("bad", [-1, 1.5, True, "3", None])
def test_bad_row_offsets_raise_naming_the_argument(bad):
    table = mixed_table()
    with pytest.raises(ValueError, match=r"row_offset must be an int >= 0; got "):
        ds.run_steps(np.zeros((3, 2)), table, score=ds.LinearScore(0.0, 1.0), rng=1, row_offset=bad)


def test_offsets_past_the_counter_range_raise():
    table = mixed_table()
    with pytest.raises(ValueError, match=r"row_offset = .* past the generator's 2\*\*64"):
        ds.run_steps(np.zeros((3, 2)), table, score=ds.LinearScore(0.0, 1.0), rng=1, row_offset=2**63)
    # the last representable rows still run
    ds.run_steps(np.zeros((3, 2)), table, score=ds.LinearScore(0.0, 1.0), rng=1, row_offset=2**63 - 3)
