# syntax=docker/dockerfile:1
# The model service image: serving/ with one exported model baked in (serving/README.md).
#
#   modelops export-model --model-uri models:/credit-scoring@champion --out build/model
#   docker build --build-arg MODEL_DIR=build/model --build-arg MODEL_NAME=credit-scoring \
#     --build-arg MODEL_VERSION=3 --build-arg GIT_COMMIT=$(git rev-parse HEAD) -t svc:3 .
#
# `modelops export-model` prints these build arguments. MODEL_DIR must sit inside the build
# context and be let through by .dockerignore (build/model* is).

ARG PYTHON_IMAGE=docker.io/library/python:3.11.7-slim-bookworm
# The pyproject extras the service gets: `serve` runs the fast path compiled at export;
# `serve,serve-sklearn` adds sklearn for a model the fast path cannot replay (`modelops deploy
# image-plan` chooses from the export's fast_path/predictor.json).
ARG SERVE_EXTRAS=serve,serve-sklearn

# ---- build: a virtualenv with the serve extra at the lock file's versions -----------------
FROM ${PYTHON_IMAGE} AS build
ARG SERVE_EXTRAS
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1
RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH
WORKDIR /src
COPY pyproject.toml requirements.lock README.md ./
# Only the SERVE_EXTRAS extras (no mlflow, dvc, ...), constrained to requirements.lock, from
# wheels only: nothing is compiled, so no stage needs a compiler.
RUN python -c "import os, tomllib; extras = tomllib.load(open('pyproject.toml', 'rb'))['project']['optional-dependencies']; print('\n'.join(r for e in os.environ['SERVE_EXTRAS'].split(',') for r in extras[e]))" > serve-requirements.txt \
 && pip install --no-cache-dir --only-binary=:all: -c requirements.lock -r serve-requirements.txt
COPY src ./src
COPY serving ./serving
RUN pip install --no-cache-dir --no-deps . \
 && python -m compileall -q /opt/venv

# ---- runtime: the virtualenv, the model, a non-root user ----------------------------------
FROM ${PYTHON_IMAGE} AS runtime
ARG MODEL_DIR=build/model
RUN groupadd --system --gid 10001 app \
 && useradd --system --uid 10001 --gid app --home-dir /app --no-create-home --shell /usr/sbin/nologin app
WORKDIR /app
COPY --from=build /opt/venv /opt/venv
# Root-owned and read-only for the service user; only logs/ is writable.
COPY ${MODEL_DIR} /app/model
RUN mkdir /app/logs && chown app:app /app/logs
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    OMP_NUM_THREADS=1 \
    MODELOPS_MODEL_URI=/app/model \
    MODELOPS_HOST=0.0.0.0 \
    MODELOPS_PORT=8000 \
    MODELOPS_PREDICTION_LOG=/app/logs/predictions
# What differs between two builds of the same code and model comes last, so a rebuild for
# another commit or tag reuses every layer above.
ARG MODEL_NAME=unregistered
ARG MODEL_VERSION=unregistered
ARG MODEL_RUN_ID=""
ARG GIT_COMMIT=unknown
ARG IMAGE_TAG=none
LABEL org.opencontainers.image.title="modelops model service" \
      org.opencontainers.image.description="FastAPI scoring service for ${MODEL_NAME} version ${MODEL_VERSION}" \
      org.opencontainers.image.version="${MODEL_NAME}-${MODEL_VERSION}" \
      org.opencontainers.image.revision="${GIT_COMMIT}" \
      org.opencontainers.image.licenses="Apache-2.0" \
      io.modelops.model.name="${MODEL_NAME}" \
      io.modelops.model.version="${MODEL_VERSION}" \
      io.modelops.model.run-id="${MODEL_RUN_ID}"
ENV MODELOPS_IMAGE_TAG=${IMAGE_TAG}
USER 10001:10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=30s --retries=3 \
  CMD ["python", "-m", "serving.healthcheck"]
CMD ["python", "-m", "serving"]
