"""TEMPLATE's compiled model: a plan, run on numpy."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ember.plugin import Port
from ember_template.plan import Plan


class TemplateCompiledModel:
    """Follows :class:`ember.contract.device.DeviceModel`; the core checks inputs before
    ``infer``."""

    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        self.inputs: list[Port] = plan.inputs
        self.outputs: list[Port] = plan.outputs

    def infer(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        # The plan keeps no state between runs, so concurrent infer requests need no lock.
        return self.plan.run(inputs)
