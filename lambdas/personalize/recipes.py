"""Personalize's recipes by name, so a plan may say `aws-sims` where the API wants an ARN, and a
retired recipe is refused with its replacement before anything is created.

https://docs.aws.amazon.com/personalize/latest/dg/working-with-predefined-recipes.html
https://docs.aws.amazon.com/personalize/latest/dg/domain-use-cases.html
"""

from __future__ import annotations

from .core import InvalidStepInputError

CUSTOM = {  # recipe -> recipe type, for solutions
    "aws-user-personalization-v2": "USER_PERSONALIZATION",
    "aws-user-personalization": "USER_PERSONALIZATION",
    "aws-trending-now": "POPULAR_ITEMS",
    "aws-popularity-count": "POPULAR_ITEMS",
    "aws-personalized-ranking-v2": "PERSONALIZED_RANKING",
    "aws-personalized-ranking": "PERSONALIZED_RANKING",
    "aws-semantic-similarity": "RELATED_ITEMS",
    "aws-similar-items": "RELATED_ITEMS",
    "aws-sims": "RELATED_ITEMS",
    "aws-next-best-action": "PERSONALIZED_ACTIONS",
    "aws-item-affinity": "USER_SEGMENTATION",
    "aws-item-attribute-affinity": "USER_SEGMENTATION",
}
DOMAIN = {  # recipe (use case) -> domain, for recommenders
    "aws-vod-because-you-watched-x": "VIDEO_ON_DEMAND",
    "aws-vod-more-like-x": "VIDEO_ON_DEMAND",
    "aws-vod-most-popular": "VIDEO_ON_DEMAND",
    "aws-vod-trending-now": "VIDEO_ON_DEMAND",
    "aws-vod-top-picks": "VIDEO_ON_DEMAND",
    "aws-ecomm-customers-who-viewed-x-also-viewed": "ECOMMERCE",
    "aws-ecomm-frequently-bought-together": "ECOMMERCE",
    "aws-ecomm-popular-items-by-purchases": "ECOMMERCE",
    "aws-ecomm-popular-items-by-views": "ECOMMERCE",
    "aws-ecomm-recommended-for-you": "ECOMMERCE",
}
# https://docs.aws.amazon.com/personalize/latest/dg/legacy-user-personalization-recipes.html
RETIRED = {
    "aws-hrnn": "aws-user-personalization-v2",
    "aws-hrnn-metadata": "aws-user-personalization-v2",
    "aws-hrnn-coldstart": "aws-user-personalization-v2",
}


def recipe_arn(recipe: str, partition: str, known: dict[str, str]) -> str:
    """The recipe's ARN (arn:<partition>:personalize:::recipe/<name>), refusing retired ones and
    names not in `known`; a full ARN of a recipe not listed here is passed through."""
    name = recipe.rsplit("/", 1)[-1]
    if name in RETIRED:
        raise InvalidStepInputError(f"recipe {name} is retired; use {RETIRED[name]}")
    if recipe.startswith("arn:"):
        return recipe
    if name not in known:
        raise InvalidStepInputError(f"unknown recipe {name!r}; one of {sorted(known)}")
    return f"arn:{partition}:personalize:::recipe/{name}"


def partition_of(arn: str | None) -> str:
    parts = (arn or "").split(":")
    return parts[1] if len(parts) > 1 and parts[1] else "aws"
