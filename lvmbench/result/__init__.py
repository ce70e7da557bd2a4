"""A run's results as one typed, versioned object (:class:`Result`), and its training history (:class:`History`).

Every reader of results.json - report, compare, gate, trec, the suite, sweep,
folds and seeds tables, the HTML page - goes through :class:`Result`:
``Result.from_json(run_dir_or_path_or_dict)`` checks the schema version,
migrates an older file, and returns typed sections; ``to_json()`` gives the
object back exactly.  The metrics are keyed by the metric table
(:data:`lvmbench.evaluate.metrics.METRICS`).  Layer 3 (beside ``evaluate``),
so every layer above may import it.
"""

from lvmbench.result.history import HISTORY, Epoch, History
from lvmbench.result.record import Record, SchemaError, is_metric_key
from lvmbench.result.schema import MIGRATIONS, RESULTS, SCHEMA_VERSION, Result, migrate, results_path
from lvmbench.result.scores import BestBaseline, Lift, Scores
from lvmbench.result.sections import (
    Bank, Consistency, Copies, DataGates, DataSettings, DatasetInfo, Diagnostics, DirectionRow, Env, EvalSettings,
    GateCheck, GateRecord, Git, Latency, LatencyStat, Leakage, Machine, ModelInfo, OffsetCos, PoolInfo, QueryRecord,
    RecipeRecord, SplitInfo, Timings, Tool,
)

__all__ = [
    "HISTORY", "MIGRATIONS", "RESULTS", "SCHEMA_VERSION", "Bank", "BestBaseline", "Consistency", "Copies",
    "DataGates", "DataSettings", "DatasetInfo", "Diagnostics", "DirectionRow", "Env", "Epoch", "EvalSettings",
    "GateCheck", "GateRecord", "Git", "History", "Latency", "LatencyStat", "Leakage", "Lift", "Machine", "ModelInfo",
    "OffsetCos", "PoolInfo", "QueryRecord", "RecipeRecord", "Record", "Result", "SchemaError", "Scores", "SplitInfo",
    "Timings", "Tool", "is_metric_key", "migrate", "results_path",
]
