"""The SageMaker built-in images the product runs, by region: registry account, host and tags.

Each region's images live in one AWS-owned registry account of that region; an image from
another account or region, or a tag that does not exist, cannot be pulled. The table is data
(`sagemaker_images.json`), generated from the `sagemaker` package's `image_uri_config/*.json`
with `python -m recops.images`, and a test checks it still matches the installed package. The
local account refuses images that are not in it; the stack builds its image URIs from it.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path
from typing import Any

TABLE = Path(__file__).with_name("sagemaker_images.json")
# repository -> (the sagemaker package's config file, scopes read, tag for a version)
SOURCES = {
    "factorization-machines": ("factorization-machines", ("versions",), "{version}"),
    "knn": ("knn", ("versions",), "{version}"),
    "sagemaker-scikit-learn": ("sklearn", ("training", "inference"), "{version}-cpu-py3"),
}


@functools.cache
def table() -> dict[str, Any]:
    return json.loads(TABLE.read_text())


def image_uri(name: str, region: str, version: str | None = None) -> str:
    """The image's URI in a region; version defaults to the newest tag the table knows."""
    image = table()["images"][name]
    if region not in image["registries"]:
        raise ValueError(f"{name} has no registry in {region}")
    tag = version if version in image["tags"] else None
    if version is None:
        tag = image["tags"][-1]
    elif tag is None:
        matches = [t for t in image["tags"] if t.startswith(f"{version}-")]
        if not matches:
            raise ValueError(f"{name} has no version {version}; known tags: {image['tags']}")
        tag = matches[0]
    host = table()["hosts"][region]
    return f"{image['registries'][region]}.dkr.{host}/{name}:{tag}"


def parse_image_uri(uri: str) -> tuple[str, str, str, str] | None:
    """(account, region, repository, tag) of an ECR image URI, or None if it is not one."""
    import re

    match = re.fullmatch(
        r"(\d{12})\.dkr\.ecr(?:-fips)?\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?/([a-z0-9._/-]+)(?::([\w.-]+))?(?:@sha256:[0-9a-f]{64})?",
        uri,
    )
    if match is None:
        return None
    account, region, repository, tag = match.groups()
    return account, region, repository, tag or "latest"


# --- the generator ------------------------------------------------------------------------------


def _config_dir() -> Path:
    """The package's data folder, found without importing it (its import takes seconds)."""
    import importlib.util

    spec = importlib.util.find_spec("sagemaker")
    return Path(next(iter(spec.submodule_search_locations))) / "image_uri_config"


def _ecr_host(region: str) -> str:
    import botocore.loaders
    import botocore.regions

    resolver = botocore.regions.EndpointResolver(
        botocore.loaders.create_loader().load_data("endpoints")
    )
    endpoint = resolver.construct_endpoint("ecr", region)
    return endpoint["hostname"] if endpoint else f"ecr.{region}.amazonaws.com"


def generate() -> dict[str, Any]:
    """The table, read from the installed sagemaker package."""
    import importlib.metadata

    images: dict[str, Any] = {}
    for repository, (config, scopes, tag_format) in SOURCES.items():
        data = json.loads((_config_dir() / f"{config}.json").read_text())
        registries: dict[str, str] = {}
        tags: list[str] = []
        for scope in scopes:
            section = data if scope == "versions" else data[scope]
            for version, entry in section["versions"].items():
                if entry.get("repository", repository) != repository:
                    continue
                for region, account in entry["registries"].items():
                    if registries.setdefault(region, account) != account:
                        raise ValueError(f"{repository}: two registries in {region}")
                tag = tag_format.format(version=version)
                if tag not in tags:
                    tags.append(tag)
        images[repository] = {"tags": tags, "registries": dict(sorted(registries.items()))}
    regions = sorted({r for image in images.values() for r in image["registries"]})
    return {
        "source": f"sagemaker=={importlib.metadata.version('sagemaker')} image_uri_config",
        "hosts": {region: _ecr_host(region) for region in regions},
        "images": images,
    }


def main() -> None:
    TABLE.write_text(json.dumps(generate(), indent=1, sort_keys=False) + "\n")
    print(f"wrote {TABLE}")


if __name__ == "__main__":
    main()
