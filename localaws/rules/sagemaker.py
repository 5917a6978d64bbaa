"""SageMaker rules the service model does not carry: unique job names, built-in images,
and the hyperparameters of the built-in FM and KNN algorithms."""

from __future__ import annotations

from dataclasses import dataclass

from localaws.rules import Rule
from localaws.validation import Request, RequestRefusedError
from recops import images

# --- job names are unique per account and region ------------------------------------------------
UNIQUE_NAMES_DOC = (
    "https://docs.aws.amazon.com/sagemaker/latest/APIReference/API_CreateTrainingJob.html"
)
# operation -> (name member, moto backend attribute, noun in the message)
JOBS = {
    "CreateTrainingJob": ("TrainingJobName", "training_jobs", "training job"),
    "CreateProcessingJob": ("ProcessingJobName", "processing_jobs", "processing job"),
    "CreateTransformJob": ("TransformJobName", "transform_jobs", "transform job"),
}

# --- built-in images come from their region's registry ------------------------------------------
IMAGES_DOC = "https://docs.aws.amazon.com/sagemaker/latest/dg-ecr-paths/sagemaker-algo-docker-registry-paths.html"
# operation -> paths to the image members ("*" walks a list)
IMAGE_MEMBERS = {
    "CreateTrainingJob": (("AlgorithmSpecification", "TrainingImage"),),
    "CreateProcessingJob": (("AppSpecification", "ImageUri"),),
    "CreateModel": (("PrimaryContainer", "Image"), ("Containers", "*", "Image")),
}
INVALID_IMAGE = (
    "Invalid {noun} image. Please provide a valid Amazon Elastic Container Registry path of the "
    "Docker image to run."
)
ACCESS_DENIED = (
    "Access denied for repository: {repository} in registry ID: {account}. Please check if your "
    "ECR repository and image exist and role {role} has proper pull permissions for SageMaker: "
    "ecr:BatchCheckLayerAvailability, ecr:BatchGetImage, ecr:GetDownloadUrlForLayer"
)


@dataclass(frozen=True)
class Hyperparameter:
    kind: type = str  # int, float or str: every value arrives as a string
    required: bool = False
    minimum: float | None = None
    exclusive_minimum: bool = False
    choices: tuple[str, ...] = ()


_POSITIVE_INT = Hyperparameter(int, minimum=0, exclusive_minimum=True)
_NON_NEGATIVE = Hyperparameter(float, minimum=0)
_INIT = Hyperparameter(choices=("normal", "uniform", "constant"))

# https://docs.aws.amazon.com/sagemaker/latest/dg/fact-machines-hyperparameters.html
FM_DOC = "https://docs.aws.amazon.com/sagemaker/latest/dg/fact-machines-hyperparameters.html"
FACTORIZATION_MACHINES = {
    "feature_dim": Hyperparameter(int, True, 0, True),
    "num_factors": Hyperparameter(int, True, 0, True),
    "predictor_type": Hyperparameter(str, True, choices=("binary_classifier", "regressor")),
    "bias_init_method": _INIT,
    "bias_init_scale": _NON_NEGATIVE,
    "bias_init_sigma": _NON_NEGATIVE,
    "bias_init_value": Hyperparameter(float),
    "bias_lr": _NON_NEGATIVE,
    "bias_wd": _NON_NEGATIVE,
    "clip_gradient": Hyperparameter(float),
    "epochs": _POSITIVE_INT,
    "eps": Hyperparameter(float),
    "factors_init_method": _INIT,
    "factors_init_scale": _NON_NEGATIVE,
    "factors_init_sigma": _NON_NEGATIVE,
    "factors_init_value": Hyperparameter(float),
    "factors_lr": _NON_NEGATIVE,
    "factors_wd": _NON_NEGATIVE,
    "linear_init_method": _INIT,
    "linear_init_scale": _NON_NEGATIVE,
    "linear_init_sigma": _NON_NEGATIVE,
    "linear_init_value": Hyperparameter(float),
    "linear_lr": _NON_NEGATIVE,
    "linear_wd": _NON_NEGATIVE,
    "mini_batch_size": _POSITIVE_INT,
    "rescale_grad": Hyperparameter(float),
}
# https://docs.aws.amazon.com/sagemaker/latest/dg/kNN_hyperparameters.html
KNN_DOC = "https://docs.aws.amazon.com/sagemaker/latest/dg/kNN_hyperparameters.html"
KNN = {
    "feature_dim": Hyperparameter(int, True, 0, True),
    "k": Hyperparameter(int, True, 0, True),
    "predictor_type": Hyperparameter(str, True, choices=("classifier", "regressor")),
    "sample_size": Hyperparameter(int, True, 0, True),
    "dimension_reduction_target": _POSITIVE_INT,
    "dimension_reduction_type": Hyperparameter(choices=("sign", "fjlt")),
    "faiss_index_ivf_nlists": Hyperparameter(str),  # "auto" or a positive integer
    "faiss_index_pq_m": Hyperparameter(
        choices=tuple(str(m) for m in (1, 2, 3, 4, 8, 12, 16, 20, 24, 28, 32, 40, 48, 56, 64, 96))
    ),
    "index_metric": Hyperparameter(choices=("L2", "INNER_PRODUCT", "COSINE")),
    "index_type": Hyperparameter(choices=("faiss.Flat", "faiss.IVFFlat", "faiss.IVFPQ")),
    "mini_batch_size": _POSITIVE_INT,
}
ALGORITHMS = {"factorization-machines": FACTORIZATION_MACHINES, "knn": KNN}


def _hyperparameter_problem(name: str, raw: str, spec: Hyperparameter) -> str | None:
    if spec.choices and raw not in spec.choices:
        return f"Hyperparameter {name}: {raw!r} is not one of {list(spec.choices)}"
    if spec.kind is str:
        return None
    try:
        value = spec.kind(raw)
    except ValueError:
        return f"Hyperparameter {name}: {raw!r} is not of type {spec.kind.__name__}"
    if spec.minimum is not None and (
        value <= spec.minimum if spec.exclusive_minimum else value < spec.minimum
    ):
        relation = "greater than" if spec.exclusive_minimum else "at least"
        return f"Hyperparameter {name}: {raw} must be {relation} {spec.minimum:g}"
    return None


def hyperparameter_failure(repository: str, hyperparameters: dict[str, str]) -> str | None:
    """The FailureReason the built-in algorithm's job ends with, or None if they are valid."""
    table = ALGORITHMS.get(repository)
    if table is None:
        return None
    unknown = sorted(set(hyperparameters) - set(table))
    if unknown:
        return (
            f"ClientError: Additional hyperparameters are not allowed ({unknown[0]!r} was "
            "unexpected) (caused by ValidationError)"
        )
    missing = [
        name for name, spec in table.items() if spec.required and name not in hyperparameters
    ]
    if missing:
        names = ", ".join(repr(n) for n in missing)
        return (
            f"ClientError: No value(s) were specified for {names} which are required "
            "hyperparameter(s) (caused by ValidationError)"
        )
    for name, raw in hyperparameters.items():
        problem = _hyperparameter_problem(name, raw, table[name])
        if problem:
            return f"ClientError: {problem} (caused by ValidationError)"
    if "dimension_reduction_type" in hyperparameters and (
        "dimension_reduction_target" not in hyperparameters
    ):
        return (
            "ClientError: No value(s) were specified for 'dimension_reduction_target' which are "
            "required hyperparameter(s) (caused by ValidationError)"
        )
    return None


# --- the checks ---------------------------------------------------------------------------------


def _check_unique_name(request: Request, params: dict) -> None:
    from moto.sagemaker.models import sagemaker_backends

    member, attribute, noun = JOBS[request.operation]
    jobs = getattr(sagemaker_backends[request.account][request.region], attribute)
    existing = jobs.get(params[member])
    if existing is not None:
        arn = getattr(existing, "arn", None) or next(
            (v for k, v in vars(existing).items() if k.endswith("_arn")), ""
        )
        raise RequestRefusedError(
            "ResourceInUse",
            f"{noun.capitalize()} names must be unique within an AWS account and region, and a "
            f"{noun} with this name already exists ({arn})",
        )


def _values(params: dict, path: tuple[str, ...]) -> list:
    values = [params]
    for step in path:
        if step == "*":
            values = [item for value in values for item in (value or [])]
        else:
            values = [value.get(step) for value in values if isinstance(value, dict)]
    return [v for v in values if v is not None]


def _check_images(request: Request, params: dict) -> None:
    noun = {"CreateTrainingJob": "training", "CreateProcessingJob": "processing"}.get(
        request.operation, "model"
    )
    for path in IMAGE_MEMBERS[request.operation]:
        for uri in _values(params, path):
            role = params.get("RoleArn") or params.get("ExecutionRoleArn") or ""
            check_image(uri, request.region, role, noun, request.account)


def check_image(
    uri: str, region: str, role: str, noun: str = "training", account_id: str = ""
) -> None:
    """An image must be an ECR path; a built-in one must be in its region's registry, tag known."""
    parsed = images.parse_image_uri(uri)
    if parsed is None:
        raise RequestRefusedError("ValidationException", INVALID_IMAGE.format(noun=noun))
    account, image_region, repository, tag = parsed
    known = images.table()["images"].get(repository)
    if known is None or _own_repository(account_id, region, account, repository):
        return  # a customer's own repository: nothing local can say whether it exists
    registry = known["registries"].get(region)
    if account != registry or image_region != region or tag not in known["tags"]:
        raise RequestRefusedError(
            "ValidationException",
            ACCESS_DENIED.format(repository=repository, account=account, role=role),
        )


def _own_repository(account_id: str, region: str, account: str, repository: str) -> bool:
    """The caller's own ECR repository that happens to share a built-in image's name."""
    from moto.ecr.models import ecr_backends

    if account != account_id:
        return False
    return repository in ecr_backends[account_id][region].repositories


RULES = [
    Rule(tuple(("sagemaker", op) for op in JOBS), UNIQUE_NAMES_DOC, _check_unique_name),
    Rule(tuple(("sagemaker", op) for op in IMAGE_MEMBERS), IMAGES_DOC, _check_images),
]
