"""Local stand-ins for Personalize recipes: real models, trained on the imported interactions.

Personalize's models are not public; these give the same kind of answer so that workflows and
evaluations run end to end. Every model carries its stand-in's name, which localaws reports.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import scipy.sparse as sp

USER_RECIPES = {
    "aws-user-personalization": "implicit ALS",
    "aws-user-personalization-v2": "implicit ALS",
    "aws-personalized-ranking": "implicit ALS",
    "aws-personalized-ranking-v2": "implicit ALS",
    "aws-popularity-count": "popularity count",
    "aws-trending-now": "popularity count over the last 30 days",
    "aws-vod-top-picks": "implicit ALS",
    "aws-vod-most-popular": "popularity count",
    "aws-vod-trending-now": "popularity count over the last 30 days",
    "aws-ecomm-recommended-for-you": "implicit ALS",
    "aws-ecomm-popular-items-by-purchases": "popularity count",
    "aws-ecomm-popular-items-by-views": "popularity count",
}
ITEM_RECIPES = {
    "aws-similar-items": "item co-occurrence (cosine)",
    "aws-sims": "item co-occurrence (cosine)",
    "aws-vod-more-like-x": "item co-occurrence (cosine)",
    "aws-vod-because-you-watched-x": "item co-occurrence (cosine)",
    "aws-ecomm-customers-who-viewed-x-also-viewed": "item co-occurrence (cosine)",
    "aws-ecomm-frequently-bought-together": "item co-occurrence (cosine)",
}


RANKING_RECIPES = ("aws-personalized-ranking", "aws-personalized-ranking-v2")


def recipe_type(recipe: str) -> str:
    """The recipe's type as DescribeRecipe reports it: what GetRecommendations needs."""
    name = recipe.rsplit("/", 1)[-1]
    if name in RANKING_RECIPES:
        return "PERSONALIZED_RANKING"
    return "RELATED_ITEMS" if name in ITEM_RECIPES else "USER_PERSONALIZATION"


def stand_in_for(recipe: str) -> str:
    name = recipe.rsplit("/", 1)[-1]
    if name in USER_RECIPES:
        return USER_RECIPES[name]
    if name in ITEM_RECIPES:
        return ITEM_RECIPES[name]
    raise ValueError(f"localaws has no stand-in for recipe {name}")


@dataclass
class Model:
    """A trained stand-in: scores items for a user, or items like an item."""

    recipe: str
    stand_in: str
    user_ids: pd.Index
    item_ids: pd.Index
    seen: sp.csr_matrix  # users x items, interactions
    popularity: np.ndarray  # per item
    user_factors: np.ndarray | None = None
    item_factors: np.ndarray | None = None
    similarity: sp.csr_matrix | None = None
    extra: dict = field(default_factory=dict)

    def user_scores(self, user_id: str) -> np.ndarray:
        """Scores of every item for the user; unknown users get popularity (as Personalize)."""
        row = self.user_ids.get_indexer([user_id])[0]
        if self.user_factors is None or row < 0:
            return self.popularity.astype(np.float64)
        return self.item_factors @ self.user_factors[row]

    def item_scores(self, item_id: str) -> np.ndarray:
        column = self.item_ids.get_indexer([item_id])[0]
        if column < 0:
            raise KeyError(item_id)
        if self.similarity is None:
            raise ValueError(f"recipe {self.recipe} does not recommend items like an item")
        scores = np.asarray(self.similarity[column].todense()).ravel()
        scores[column] = -np.inf
        return scores

    def seen_items(self, user_id: str) -> np.ndarray:
        row = self.user_ids.get_indexer([user_id])[0]
        return np.empty(0, np.int64) if row < 0 else self.seen[row].indices


def _matrix(interactions: pd.DataFrame) -> tuple[pd.Index, pd.Index, sp.csr_matrix]:
    users, user_ids = pd.factorize(interactions["USER_ID"].astype(str), sort=True)
    items, item_ids = pd.factorize(interactions["ITEM_ID"].astype(str), sort=True)
    matrix = sp.csr_matrix(
        (np.ones(len(users), np.float32), (users, items)), shape=(len(user_ids), len(item_ids))
    )
    matrix.data[:] = 1.0  # repeated interactions count once
    return pd.Index(user_ids), pd.Index(item_ids), matrix


def train(recipe: str, interactions: pd.DataFrame, seed: int = 0) -> Model:
    name = recipe.rsplit("/", 1)[-1]
    stand_in = stand_in_for(name)
    user_ids, item_ids, matrix = _matrix(interactions)
    popularity = np.asarray(matrix.sum(axis=0)).ravel()
    model = Model(name, stand_in, user_ids, item_ids, matrix, popularity)
    if "last 30 days" in stand_in and "TIMESTAMP" in interactions:
        recent = interactions[
            interactions["TIMESTAMP"] >= interactions["TIMESTAMP"].max() - 30 * 86400
        ]
        counts = recent["ITEM_ID"].astype(str).value_counts()
        model.popularity = counts.reindex(item_ids, fill_value=0).to_numpy(np.float64)
    elif stand_in == "implicit ALS":
        from implicit.cpu.als import AlternatingLeastSquares
        from threadpoolctl import threadpool_limits

        with threadpool_limits(1, "blas"):  # implicit's own threads; BLAS threads would fight them
            als = AlternatingLeastSquares(
                factors=32, iterations=15, regularization=0.05, random_state=seed
            )
            als.fit(matrix * 20.0, show_progress=False)
        model.user_factors, model.item_factors = als.user_factors, als.item_factors
    elif stand_in.startswith("item co-occurrence"):
        norms = np.sqrt(np.asarray(matrix.sum(axis=0)).ravel())
        scale = sp.diags(1.0 / np.maximum(norms, 1e-12))
        model.similarity = (scale @ (matrix.T @ matrix) @ scale).tocsr()
    return model


def top(scores: np.ndarray, n: int, exclude: np.ndarray | None = None) -> np.ndarray:
    scores = np.asarray(scores, dtype=np.float64).copy()
    if exclude is not None and len(exclude):
        scores[exclude] = -np.inf
    n = min(n, int(np.isfinite(scores).sum()))
    best = np.argpartition(-scores, n - 1)[:n] if n else np.empty(0, np.int64)
    return best[np.argsort(-scores[best], kind="stable")]


def offline_metrics(recipe: str, interactions: pd.DataFrame, seed: int = 0) -> dict[str, float]:
    """Personalize-style solution metrics: each user's last interaction held out for 10% of
    the users, a model trained on the rest, scored at 5/10/25 (not the product's evaluation)."""
    from training.evaluate import Holdout, score

    frame = interactions.reset_index(drop=True)
    rng = np.random.default_rng(seed)
    users = frame["USER_ID"].astype(str).unique()
    chosen = set(rng.choice(users, max(1, len(users) // 10), replace=False))
    order = frame.sort_values(["TIMESTAMP"], kind="stable") if "TIMESTAMP" in frame else frame
    last = order.groupby(order["USER_ID"].astype(str)).tail(1)
    held = last[last["USER_ID"].astype(str).isin(chosen)]
    model = train(recipe, frame.drop(index=held.index), seed)
    if model.user_factors is None and model.similarity is not None:
        return {}  # item-to-item recipes have no per-user metrics here
    eval_users = held["USER_ID"].astype(str).to_numpy()
    recs = np.full((len(eval_users), 25), -1, dtype=np.int64)
    for row, user in enumerate(eval_users):
        best = top(model.user_scores(user), 25)
        recs[row, : len(best)] = best
    item_index = model.item_ids.get_indexer(held["ITEM_ID"].astype(str))
    known = item_index >= 0
    holdout = Holdout(
        len(eval_users),
        len(model.item_ids),
        np.arange(len(eval_users))[known],
        item_index[known],
        np.empty(0, np.int64),
        np.empty(0, np.int64),
    )
    if not known.any():
        return {}
    m = score(recs, holdout, [5, 10, 25])
    return {
        "coverage": m["coverage@25"],
        "mean_reciprocal_rank_at_25": m["mrr@25"],
        "normalized_discounted_cumulative_gain_at_5": m["ndcg@5"],
        "normalized_discounted_cumulative_gain_at_10": m["ndcg@10"],
        "normalized_discounted_cumulative_gain_at_25": m["ndcg@25"],
        "precision_at_5": m["precision@5"],
        "precision_at_10": m["precision@10"],
        "precision_at_25": m["precision@25"],
    }
