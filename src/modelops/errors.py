"""User-facing errors: each message says what was wrong and what to do next."""


class ModelopsError(Exception):
    """Base class; the CLI prints the message on one line and exits 1, without a traceback."""


class ParamsError(ModelopsError, ValueError):
    """params.yaml is missing or does not describe a valid configuration."""


class DataError(ModelopsError, ValueError):
    """The data cannot be used as it is; the message names the column and the problem."""


class RegistryError(ModelopsError, RuntimeError):
    """A registry operation was refused."""


class Refused(ModelopsError):
    """A step refused to go on (failed gate, mismatched reports, missing inputs)."""


class RouterError(ModelopsError, RuntimeError):
    """Traffic was not moved: an invalid split, or the router failed; the previous state stands."""


class MetricsError(ModelopsError, RuntimeError):
    """A metrics query failed (Prometheus unreachable, query refused, unexpected answer)."""


class RegistryUnreachable(RegistryError):
    """The MLflow tracking server did not answer within the retry budget."""
