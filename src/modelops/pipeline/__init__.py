"""The DVC pipeline's stages: data (read, split), data validation, train, evaluate, gate.

Each stage is one `modelops` command that `dvc.yaml` calls with paths as arguments.
"""
