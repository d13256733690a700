"""`modelops canary --target infra/terraform/envs/<env>`: the canary of the deploy workflow.

The release goes from what the environment's desired state says is stable (its GitOps file,
i.e. what is live) to the model version and image the workflow built. Traffic moves with
`TerraformRouter`, analysis queries the environment's Prometheus (its series carry
`env="<env folder name>"`), the registry records the outcome. When the registry has no
champion yet this is a first deploy: the version is served locally from the registry and
smoke-tested before it goes to stable.
"""

from __future__ import annotations

from pathlib import Path

from modelops import registry
from modelops.config import Params
from modelops.deploy.controller import Outcome, resume_canary, run_canary
from modelops.deploy.gitops import IMAGE_PATTERN
from modelops.deploy.local.rehearsal import resolve_version
from modelops.deploy.metrics import PrometheusMetricProvider
from modelops.deploy.promoter import RegistryPromoter
from modelops.deploy.router import TerraformRouter
from modelops.deploy.smoke import smoke_test_model
from modelops.deploy.state import Release
from modelops.errors import Refused


def terraform_canary(
    params: Params,
    env_dir: Path,
    *,
    model_name: str,
    model_version: str,
    image: str | None,
    prometheus_url: str,
    run_dir: Path,
    resume: bool = False,
    terraform: str = "terraform",
) -> Outcome:
    """Run (or resume) the canary of `model_version` in the terraform environment `env_dir`."""
    router = TerraformRouter(env_dir, terraform=terraform)
    metrics = PrometheusMetricProvider(prometheus_url, params.canary.query_timeout_seconds)
    promoter = RegistryPromoter()
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        return resume_canary(router, metrics, promoter, params, run_dir)
    version = resolve_version(model_name, model_version)
    if version is None:
        raise Refused(f"models:/{model_name}@{model_version} does not exist in the registry")
    if not image or not IMAGE_PATTERN.fullmatch(image):
        raise Refused(
            f"--image {image!r} is not pinned by digest: pass the image the workflow pushed, "
            "as registry/repo@sha256:<64 hex>"
        )
    champion = registry.version_by_alias(model_name, registry.CHAMPION)
    if champion is None:
        release = Release(model_name, version, image)
    else:
        live = router.current()
        release = Release(model_name, version, image, live.stable_model_version, live.stable_image)
    uri = f"models:/{model_name}/{version}"
    return run_canary(
        release,
        router,
        metrics,
        promoter,
        params,
        Path(env_dir).resolve().name,
        run_dir,
        smoke=lambda _: smoke_test_model(uri, run_dir, params.canary.smoke_requests),
    )
