"""Model families, baselines, the registry and the one ``predict()``."""

from lvmbench.models.predict import predict
from lvmbench.models.registry import REGISTRY, build, n_params

__all__ = ["predict", "REGISTRY", "build", "n_params"]
