"""Redaction of logged inputs: `serve.log_redact`'s columns are dropped or replaced by an
HMAC-SHA256 of the value before a prediction-log line is built.

The hash is keyed by MODELOPS_LOG_HASH_SALT (a secret of the deployment): without the key a
hashed value cannot be guessed by hashing candidates, and with the same key the same value
gives the same hash everywhere, so hashed columns can still be joined and counted. Missing
values stay missing (`null`).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any

import orjson

from modelops.registry.log_policy import LogRedaction
from serving.model import ModelLoadError


def _canonical(value: Any) -> bytes:
    """The bytes hashed for a value: its JSON text in UTF-8 (strings quoted, numbers as
    numbers); a string UTF-8 cannot hold (a lone surrogate) is escaped instead."""
    try:
        return orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=True).encode()


class Redactor:
    """Applies one policy to one record (a dict of the model's inputs)."""

    def __init__(self, policy: LogRedaction, salt: str) -> None:
        self.drop, self.hash = frozenset(policy.drop), tuple(policy.hash)
        self._mac = hmac.new(salt.encode(), digestmod=hashlib.sha256)  # keyed once, copied

    def digest(self, value: Any) -> str | None:
        if value is None:
            return None
        mac = self._mac.copy()
        mac.update(_canonical(value))
        return mac.hexdigest()

    def __call__(self, record: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in record.items() if k not in self.drop}
        for column in self.hash:
            if column in out:
                out[column] = self.digest(out[column])
        return out


def build_redactor(policy: LogRedaction | None, salt: str | None) -> Redactor | None:
    """The redactor for a model folder's policy; None when nothing is redacted. Hashing
    without a salt is refused: an unkeyed hash of a low-entropy value is easily reversed."""
    if policy is None or not policy.columns:
        return None
    if policy.hash and not salt:
        raise ModelLoadError(
            f"the model's log_redact.json hashes {policy.hash} in the prediction log, but "
            "MODELOPS_LOG_HASH_SALT is not set: set it to a secret of at least 16 characters "
            "(e.g. `openssl rand -hex 32`), the same for every replica"
        )
    if policy.hash and salt is not None and len(salt) < 16:
        raise ModelLoadError(
            "MODELOPS_LOG_HASH_SALT is shorter than 16 characters; use a longer secret "
            "(e.g. `openssl rand -hex 32`)"
        )
    return Redactor(policy, salt or "")
