"""The ``rule`` element: a Stellar boolean expression over its input tags, evaluated at every
grid point — true is anomalous (artifact 1), false normal (0). It is pretrained by definition:
"training" only checks it against the dataset (its tags exist, it evaluates) and records how many
indicator points it flags; its threshold is 0.5. A Stellar expression is not an ONNX graph, so a
rule has no payload: inference evaluates it with :mod:`stellar_like` (``RuleModel.score``).

Tags are read by name, or — a name that is not an identifier, such as ``motor current`` — by the
alias markup conditions use (``motor_current``). A point is *inconclusive* when a tag the expression reads has no value there (NaN; it is passed to
the expression as null), or when the result is not a boolean (null, an evaluation error): it is
anomalous when ``inconclusive_positive``, else normal.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from lifecycle.elements import indicator
from lifecycle.elements.errors import TrainingRefused
from lifecycle.elements.loop import Callbacks, EpochReport
from lifecycle.elements.params import RuleParams, compile_rule, expression_variables, parse_params, rule_variables
from lifecycle.elements.trained import Scores, TrainedElement

import stellar_like

RULE_THRESHOLD = 0.5


@dataclass
class RuleModel:
    inputs: list[str]
    expression: str
    inconclusive_positive: bool = False

    def __post_init__(self) -> None:
        self._compiled = compile_rule(self.expression)
        self._aliases = rule_variables(list(self.inputs))  # variable → tag
        self._read = expression_variables(self.expression)

    def evaluate_row(self, row: dict[str, Any]) -> float:
        """1.0 (anomalous) or 0.0 for ``row``, which maps tags to values."""
        variables = {name: row.get(tag) for name, tag in self._aliases.items()}
        variables = {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in variables.items()}
        try:
            value = self._compiled.evaluate(variables)
        except stellar_like.StellarEvaluationError:
            value = None
        if isinstance(value, bool) and not any(variables.get(name) is None for name in self._read):
            return 1.0 if value else 0.0
        return 1.0 if self.inconclusive_positive else 0.0

    def score(self, frame: pd.DataFrame) -> Scores:
        columns = list(self.inputs)
        values = frame.loc[:, columns].to_numpy(dtype=np.float64)
        artifact = np.array([self.evaluate_row(dict(zip(columns, row))) for row in values.tolist()], dtype=np.float64)
        return Scores(np.arange(len(frame)), artifact)


def train_rule(frame: pd.DataFrame, mask: pd.Series | np.ndarray | None, inputs: list[str],
               params: dict[str, Any] | RuleParams, callbacks: Callbacks | None = None) -> TrainedElement:
    """Check a rule against ``frame`` and report the share of indicator points it flags."""
    callbacks = callbacks or Callbacks()
    p = params if isinstance(params, RuleParams) else parse_params("rule", params)
    compile_rule(p.expression)
    indicator.check_tags(frame, inputs, "inputs")
    selected = indicator.as_mask(frame, mask)
    if not selected.any():
        raise TrainingRefused("no_points", "the learning indicator selects no grid point of the dataset: check the "
                              "training markups and interval", field="training.markups")
    started = callbacks.clock.monotonic()
    model = RuleModel(list(inputs), p.expression, p.inconclusive_positive)
    flagged = float(model.score(frame.loc[selected]).artifact.mean())
    report = EpochReport(1, flagged, None, callbacks.clock.monotonic() - started)
    callbacks.on_epoch(report)
    return TrainedElement(kind="rule", inputs=list(inputs), outputs=[], window=1, params=p.model_dump(mode="json"),
                          model=model, threshold=RULE_THRESHOLD, threshold_derived=True, history=[report],
                          grid_points=int(selected.sum()), train_samples=int(selected.sum()),
                          validation_artifact={"flagged_share": flagged}, duration_s=report.elapsed_s)
