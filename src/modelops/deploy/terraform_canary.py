"""`modelops deploy canary --target infra/terraform/envs/<env>`: the canary of the deploy workflow.

The release goes from what the environment's desired state says is stable (its GitOps file,
i.e. what is live) to the model version and image the workflow built. Traffic moves with
`TerraformRouter`, analysis queries the environment's Prometheus (its series carry
`env="<env folder name>"`), the registry records the outcome. When the registry has no
champion yet this is a first deploy: the version is applied as stable and the deployed
service (`service_url`) is smoke-tested; a failed smoke test puts the previous state back.
"""

from __future__ import annotations

from pathlib import Path

from modelops.config import Params
from modelops.deploy.controller import Outcome, resume_canary, run_canary
from modelops.deploy.dryrun import DryRunPromoter, DryRunRouter
from modelops.deploy.gitops import IMAGE_PATTERN
from modelops.deploy.metrics import PrometheusMetricProvider
from modelops.deploy.promoter import Promoter, RegistryPromoter
from modelops.deploy.router import Router, TerraformRouter
from modelops.deploy.smoke import records_from_model, smoke_test_deployed
from modelops.deploy.state import Release
from modelops.errors import Refused
from modelops.registry.client import CHAMPION, RegistryClient


def terraform_canary(
    params: Params,
    env_dir: Path,
    registry: RegistryClient,
    *,
    model_name: str,
    model_version: str,
    image: str | None,
    prometheus_url: str,
    service_url: str | None,
    run_dir: Path,
    resume: bool = False,
    terraform: str = "terraform",
    dry_run: bool = False,
) -> Outcome:
    """Run (or resume) the canary of `model_version` in the terraform environment `env_dir`.

    `dry_run`: the analysis on live metrics, every action logged instead of done
    (`deploy/dryrun.py`), state and reports in `run_dir/dry-run`.
    """
    router: Router = TerraformRouter(env_dir, terraform=terraform)
    metrics = PrometheusMetricProvider(prometheus_url, params.canary.query_timeout_seconds)
    promoter: Promoter = RegistryPromoter(registry)
    if dry_run:
        if resume:
            raise Refused("--dry-run starts a fresh analysis; it does not resume")
        router, promoter, run_dir = DryRunRouter(router), DryRunPromoter(), run_dir / "dry-run"
    run_dir.mkdir(parents=True, exist_ok=True)
    if resume:
        return resume_canary(router, metrics, promoter, params, run_dir)
    version = registry.resolve(model_name, model_version)
    if version is None:
        raise Refused(f"models:/{model_name}@{model_version} does not exist in the registry")
    if not image or not IMAGE_PATTERN.fullmatch(image):
        raise Refused(
            f"--image {image!r} is not pinned by digest: pass the image the workflow pushed, "
            "as registry/repo@sha256:<64 hex>"
        )
    champion = registry.version_by_alias(model_name, CHAMPION)
    if champion is None:
        release = Release(model_name, version, image)
    else:
        live = router.current()
        release = Release(model_name, version, image, live.stable_model_version, live.stable_image)
    if release.first_deploy and dry_run:
        raise Refused(
            f"first deploy of {model_name} to {env_dir}: nothing serves yet, so there is no "
            "live traffic for a dry run to analyse"
        )
    if release.first_deploy and not service_url:
        raise Refused(
            f"first deploy of {model_name} to {env_dir}: the smoke test probes the deployed "
            "service, so give its address with --service-url (or SERVICE_URL), e.g. "
            "https://staging.models.example.com"
        )

    def smoke(release: Release) -> None:
        model_dir = registry.download(release.canary_uri, run_dir / "smoke-model")
        smoke_test_deployed(
            router,
            release,
            str(service_url),
            records_from_model(model_dir),
            params.canary.smoke_requests,
            params.canary.progress_deadline_seconds,
        )

    return run_canary(
        release,
        router,
        metrics,
        promoter,
        params,
        Path(env_dir).resolve().name,
        run_dir,
        smoke=smoke,
        shadow_skip_reason=(
            "the terraform target has no prediction-log source to join the two tracks' "
            "answers (ship both tracks' logs to one place and give the controller a "
            "ShadowSource to enable it)"
        ),
    )
