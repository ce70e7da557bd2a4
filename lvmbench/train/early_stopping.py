"""Early stopping on a validation metric, as Lightning counts it.

Patience counts validation checks without an improvement of more than
``min_delta`` (an absolute change).  The best value is part of the resume
state: a resumed run that forgot it would overwrite a good checkpoint with a
worse one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass
class EarlyStopping:
    patience: int
    min_delta: float = 0.0
    best: float = -math.inf
    bad_epochs: int = 0

    def update(self, value: float) -> bool:
        """Record one validation check; True when it improved on the best so far."""
        improved = value > self.best + self.min_delta
        if improved:
            self.best, self.bad_epochs = value, 0
        else:
            self.bad_epochs += 1
        return improved

    @property
    def should_stop(self) -> bool:
        return self.bad_epochs >= self.patience

    @property
    def best_or_none(self) -> float | None:
        """The best value for a checkpoint or JSON (None before the first check)."""
        return None if self.best == -math.inf else self.best

    def restore(self, best: float | None, bad_epochs: int) -> None:
        self.best = -math.inf if best is None else float(best)
        self.bad_epochs = int(bad_epochs)
