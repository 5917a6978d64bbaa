"""Negative sampling: exact, uniform over each user's unseen items, never a positive."""

import numpy as np
import pytest

from training.features import SeenItems, implicit_target


def test_the_rth_unseen_item_is_found_by_one_search():
    rng = np.random.default_rng(0)
    for _ in range(100):
        n_users, n_items = int(rng.integers(1, 6)), int(rng.integers(1, 12))
        user, item = rng.integers(0, n_users, 25), rng.integers(0, n_items, 25)
        seen = SeenItems.of(user, item, n_users, n_items)
        for u in range(n_users):
            unseen = sorted(set(range(n_items)) - set(item[user == u].tolist()))
            assert seen.unseen(np.array([u]))[0] == len(unseen)
            queries = u * (n_items + 1) + np.arange(len(unseen))
            found = np.arange(len(unseen)) + (
                np.searchsorted(seen.search_keys, queries, side="right") - seen.user_start[u]
            )
            assert found.tolist() == unseen


def test_negatives_are_uniform_over_each_users_unseen_items():
    # user 0 saw items 0-4 of 10, user 1 saw items 5-9; 20,000 draws each
    user = np.repeat([0, 1], 5)
    item = np.r_[0:5, 5:10]
    seen = SeenItems.of(user, item, 2, 10)
    draws = seen.draw_unseen(np.repeat([0, 1], 20_000), np.random.default_rng(1))
    first, second = draws[:20_000], draws[20_000:]
    assert set(first.tolist()) == {5, 6, 7, 8, 9}
    assert set(second.tolist()) == {0, 1, 2, 3, 4}
    for part in (first, second):
        counts = np.bincount(part, minlength=10)[np.unique(part)]
        expected = len(part) / 5
        chi_square = ((counts - expected) ** 2 / expected).sum()
        assert chi_square < 18.5  # chi-square, 4 degrees of freedom, p = 0.001


def test_implicit_target_interleaves_and_never_labels_a_positive_zero():
    rng = np.random.default_rng(2)
    user = rng.integers(0, 40, 2000)
    item = rng.integers(0, 60, 2000)
    extra = rng.random(2000).astype(np.float32)
    examples = implicit_target(user, item, 60, 3, seed=3, extra=extra)
    assert examples.negatives_dropped == 0
    labels = examples.label.reshape(-1, 4)
    assert (labels[:, 0] == 1).all()
    assert (labels[:, 1:] == 0).all()
    np.testing.assert_array_equal(examples.user.reshape(-1, 4)[:, 0], user)
    np.testing.assert_array_equal(examples.extra.reshape(-1, 4), np.repeat(extra, 4).reshape(-1, 4))
    observed = set(zip(user.tolist(), item.tolist(), strict=True))
    negatives = examples.label == 0
    pairs = zip(examples.user[negatives].tolist(), examples.item[negatives].tolist(), strict=True)
    assert not any(pair in observed for pair in pairs)


def test_users_who_saw_everything_get_no_negatives_and_are_counted():
    user = np.r_[np.zeros(4, int), [1]]
    item = np.r_[0:4, [2]]  # user 0 saw all four items
    examples = implicit_target(user, item, 4, 2, seed=0)
    assert examples.negatives_dropped == 8
    assert (examples.user[examples.label == 0] == 1).all()
    assert set(examples.item[examples.label == 0].tolist()) <= {0, 1, 3}


def test_pairs_to_avoid_can_be_wider_than_the_positives():
    seen = SeenItems.of(np.array([0, 0, 0]), np.array([0, 1, 2]), 1, 5)
    examples = implicit_target(np.array([0]), np.array([2]), 5, 50, seed=4, seen=seen)
    assert set(examples.item[examples.label == 0].tolist()) == {3, 4}


def test_the_same_seed_gives_the_same_negatives():
    user, item = np.arange(30) % 7, np.arange(30) % 11
    first = implicit_target(user, item, 11, 4, seed=5)
    again = implicit_target(user, item, 11, 4, seed=5)
    np.testing.assert_array_equal(first.item, again.item)
    with pytest.raises(AssertionError):
        np.testing.assert_array_equal(first.item, implicit_target(user, item, 11, 4, seed=6).item)
