"""Known-answer tests run for every registered recommender (cf. implicit's RecommenderBase test mixin)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import sparse

from shopflow.models.interactions import InteractionMatrix
from shopflow.models.recommenders import RECOMMENDERS, create_recommender, load_recommender
from shopflow.models.recommenders.hybrid import coordinate_ascent, standardise
from shopflow.models.recommenders.neighbourhood import (
    CACHED_COLUMNS,
    sparse_dense_product,
    symmetric_positive_inverse,
)

PERSONALISED = sorted(name for name in RECOMMENDERS if name != "popularity")
TEXT_MODELS = sorted(name for name, cls in RECOMMENDERS.items() if cls.uses_text)


def fitted(name: str, checkerboard: InteractionMatrix, embeddings: np.ndarray):
    return create_recommender(name).fit(checkerboard, embeddings)


@pytest.mark.parametrize("name", PERSONALISED)
def test_the_top_recommendation_has_the_users_parity(name, checkerboard, checkerboard_embeddings, parity) -> None:
    # every checkerboard user has seen all items of their parity but one, the withheld diagonal item (text
    # models may equally rank the cold item of that parity first); u-all-even is the cold-start test's user
    model = fitted(name, checkerboard, checkerboard_embeddings)
    top = model.recommend(checkerboard.user_ids[checkerboard.user_ids != "u-all-even"], k=1)
    assert len(top) == checkerboard.n_users - 1
    wrong = [
        (user, item)
        for user, item in zip(top["user_id"], top["product_id"], strict=True)
        if parity(item) != parity(user)
    ]
    assert wrong == []
    if not model.uses_text:  # without text the cold items are unknown: the withheld item must win
        assert (top["product_id"].str[1:] == top["user_id"].str[1:]).all()


@pytest.mark.parametrize("name", sorted(RECOMMENDERS))
def test_seen_items_are_never_recommended_and_ranks_are_dense(name, checkerboard, checkerboard_embeddings) -> None:
    model = fitted(name, checkerboard, checkerboard_embeddings)
    top = model.recommend(k=10)
    seen = {
        (checkerboard.user_ids[user], checkerboard.item_ids[item])
        for user, item in zip(*checkerboard.user_items.nonzero(), strict=True)
    }
    assert not seen & set(zip(top["user_id"], top["product_id"], strict=True))
    assert (
        top.groupby("user_id")["rank"].agg(list)
        == pd.Series([list(range(1, 11))] * checkerboard.n_users, index=sorted(checkerboard.user_ids))
    ).all()
    assert (top.groupby("user_id")["score"].diff().dropna() <= 0).all()


@pytest.mark.parametrize("name", PERSONALISED)
def test_similar_items_share_the_parity(name, checkerboard, checkerboard_embeddings, parity) -> None:
    model = fitted(name, checkerboard, checkerboard_embeddings)
    warm_items = checkerboard.item_ids[checkerboard.item_user_counts() > 0]
    similar = model.similar_items(warm_items, k=5)
    assert (similar["product_id"] != similar["similar_product_id"]).all()
    assert (similar["product_id"].map(parity) == similar["similar_product_id"].map(parity)).all()


@pytest.mark.parametrize("name", TEXT_MODELS)
def test_a_product_with_text_and_no_interactions_is_recommended(
    name, checkerboard, checkerboard_embeddings, parity
) -> None:
    # u-all-even has seen every even item; the cold even product (text, no interactions) must come first
    model = fitted(name, checkerboard, checkerboard_embeddings)
    top = model.recommend(np.array(["u-all-even"]), k=1)
    assert top["product_id"].tolist() == ["cold-even"]
    assert model.similar_items(np.array(["cold-odd"]), k=3)["similar_product_id"].map(parity).eq(1).all()


@pytest.mark.parametrize("name", sorted(RECOMMENDERS))
def test_save_and_load_give_identical_recommendations(
    name, checkerboard, checkerboard_embeddings, tmp_path: Path
) -> None:
    model = fitted(name, checkerboard, checkerboard_embeddings)
    loaded = load_recommender(model.save(tmp_path / name))
    assert type(loaded) is type(model) and loaded.params == model.params
    pd.testing.assert_frame_equal(loaded.recommend(k=10), model.recommend(k=10))
    pd.testing.assert_frame_equal(loaded.similar_items(k=5), model.similar_items(k=5))
    assert not list(tmp_path.rglob("*.pkl")) and not list(tmp_path.rglob("*.pickle"))


@pytest.mark.parametrize("name", ["hybrid", "hybrid_cf"])
def test_hybrid_members_share_its_saved_interactions(name, checkerboard, checkerboard_embeddings, tmp_path) -> None:
    directory = fitted(name, checkerboard, checkerboard_embeddings).save(tmp_path / name)
    assert [path.relative_to(directory) for path in directory.rglob("interactions.npz")] == [Path("interactions.npz")]


def test_a_tuned_hybrid_fits_saves_and_loads_only_the_members_with_weight(
    checkerboard, checkerboard_embeddings, tmp_path
) -> None:
    # weights as tuning leaves them: content and popularity carry none
    hybrid = create_recommender("hybrid", weights=(0.5, 0.0, 1.0, 0.0)).fit(checkerboard, checkerboard_embeddings)
    assert [member is None for member in hybrid.members] == [False, True, False, True]
    als_text, ease = (fitted(name, checkerboard, checkerboard_embeddings) for name in ("als_text", "ease"))
    rows = np.arange(checkerboard.n_users)
    seen = checkerboard.user_items.toarray() > 0
    by_hand = sum(
        np.float32(weight) * standardise(member.score_users(rows), member.known_items(), seen)
        for weight, member in ((0.5, als_text), (1.0, ease))
    )
    np.testing.assert_allclose(hybrid.score_users(rows), by_hand, rtol=1e-5, atol=1e-5)

    directory = hybrid.save(tmp_path / "hybrid")
    assert sorted(path.name for path in (directory / "components").iterdir()) == ["0-als_text", "2-ease"]
    loaded = load_recommender(directory)
    pd.testing.assert_frame_equal(loaded.recommend(k=5), hybrid.recommend(k=5))
    with pytest.raises(ValueError, match="needs every member fitted"):
        hybrid.tune_post_fit(None)


def test_a_text_member_refuses_a_composite_without_embeddings(checkerboard, checkerboard_embeddings, tmp_path) -> None:
    directory = fitted("hybrid", checkerboard, checkerboard_embeddings).save(tmp_path / "hybrid")
    without_text = create_recommender("popularity").fit(checkerboard)
    with pytest.raises(ValueError, match="no item embeddings"):
        load_recommender(next(directory.glob("components/*-als_text")), shared=without_text)


@pytest.mark.parametrize("name", sorted(RECOMMENDERS))
def test_refitting_gives_the_same_recommendations(name, checkerboard, checkerboard_embeddings) -> None:
    first = fitted(name, checkerboard, checkerboard_embeddings).recommend(k=10)
    second = fitted(name, checkerboard, checkerboard_embeddings).recommend(k=10)
    pd.testing.assert_frame_equal(first, second)


def test_popularity_ranks_by_distinct_users_and_can_look_at_recent_days_only() -> None:
    # users × items; item c2 has 3 users, c0 2, c1 1, c3 none; u0 has seen c2
    weights = sparse.csr_matrix(np.array([[0, 0, 5, 0], [1, 0, 1, 0], [9, 1, 1, 0]], dtype=np.float32))
    # days since the last interaction: only u2's interactions with c0 and c1 are within the last 7 days
    days = sparse.csr_matrix((np.array([30, 30, 30, 1, 1, 30], dtype=np.float32), weights.indices, weights.indptr))
    matrix = InteractionMatrix(weights, np.array(["u0", "u1", "u2"]), np.array(["c0", "c1", "c2", "c3"]), days)
    all_time = create_recommender("popularity").fit(matrix)
    assert all_time.recommend(np.array(["u0"]), k=3)["product_id"].tolist() == ["c0", "c1", "c3"]
    assert all_time.recommend(np.array(["u0"]), k=3)["score"].tolist() == [2.0, 1.0, 0.0]
    recent = create_recommender("popularity", recent_days=7).fit(matrix)
    assert recent.recommend(np.array(["u0"]), k=2)["score"].tolist() == [1.0, 1.0]  # c0 and c1: one user each


def test_ease_weights_match_the_closed_form() -> None:
    rng = np.random.default_rng(3)
    binary = (rng.random((40, 12)) < 0.3).astype(np.float32)
    matrix = InteractionMatrix(sparse.csr_matrix(binary), np.arange(40).astype(str), np.arange(12).astype(str))
    model = create_recommender("ease", l2=5.0).fit(matrix)
    active = binary.sum(axis=0) > 0
    inverse = np.linalg.inv(binary[:, active].T.astype(np.float64) @ binary[:, active] + 5.0 * np.eye(active.sum()))
    expected = -inverse / np.diag(inverse)
    np.fill_diagonal(expected, 0.0)
    np.testing.assert_allclose(model.weights, expected, atol=1e-4)


def test_symmetric_positive_inverse_inverts() -> None:
    rng = np.random.default_rng(5)
    square = rng.random((30, 30)).astype(np.float32)
    matrix = square @ square.T + 30 * np.eye(30, dtype=np.float32)
    np.testing.assert_allclose(symmetric_positive_inverse(matrix) @ matrix, np.eye(30), atol=1e-4)


def test_the_slab_wise_sparse_dense_product_equals_the_plain_one() -> None:
    rng = np.random.default_rng(0)
    left = sparse.random(40, 300, density=0.05, format="csr", dtype=np.float32, random_state=1)
    right = rng.standard_normal((300, 2 * CACHED_COLUMNS + 77)).astype(np.float32)  # a partial last slab
    np.testing.assert_array_equal(sparse_dense_product(left, right), left @ right)


def test_standardise_uses_known_unseen_items_and_makes_unknown_items_neutral() -> None:
    scores = np.array([[1.0, 2.0, 3.0, 9.0, 7.0], [4.0, 4.0, 4.0, 4.0, 5.0]])
    known = np.array([True, True, True, True, False])  # item 4 is unknown: z = 0 whatever its score
    seen = np.array([[False, False, False, True, False], [False] * 5])  # user 0 has seen item 3
    # row 0: reference items 0..2 → mean 2, sd sqrt(2/3) = 0.816497; item 3 (seen) keeps its z: 7 / 0.816497
    # row 1: reference items 0..3 are all 4 → sd 0 → every z is 0
    expected = [[-1.224745, 0.0, 1.224745, 8.573214, 0.0], [0.0, 0.0, 0.0, 0.0, 0.0]]
    np.testing.assert_allclose(standardise(scores, known, seen), expected, atol=1e-6)


def test_coordinate_ascent_finds_the_best_weights_on_its_grid() -> None:
    # quality peaks at weights proportional to (1, 2, 0): normalised (1/3, 2/3, 0)
    target = np.array([1.0, 2.0, 0.0]) / 3

    def quality(weights: np.ndarray) -> float:
        return -float(np.abs(weights / weights.sum() - target).sum())

    assert coordinate_ascent(quality, 3) == pytest.approx([1 / 3, 2 / 3, 0.0], abs=1e-6)


def test_unknown_families_and_other_versions_are_refused(checkerboard, tmp_path: Path) -> None:
    with pytest.raises(KeyError, match="registered"):
        create_recommender("no-such-model")
    directory = create_recommender("popularity").fit(checkerboard).save(tmp_path / "pop")
    manifest = directory / "recommender.json"
    manifest.write_text(manifest.read_text().replace('"version": "1"', '"version": "0"'))
    with pytest.raises(ValueError, match="version 0"):
        load_recommender(directory)
