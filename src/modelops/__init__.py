"""modelops: DVC pipeline, MLflow registry, serving and canary deploys for tabular models."""

__version__ = "0.1.0"
