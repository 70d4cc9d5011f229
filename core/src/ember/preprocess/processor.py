"""``PrePostProcessor``: the steps of a model's inputs and outputs (:mod:`ember.preprocess.info`),
built into one recorded edit (:mod:`ember.preprocess.edit`)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ember.model.port import find_port
from ember.preprocess.info import InputInfo, OutputInfo

if TYPE_CHECKING:
    from ember.model.model import Model


class PrePostProcessor:
    """Preprocessing of a model's inputs and postprocessing of its outputs (OpenVINO's
    ``openvino.preprocess.PrePostProcessor``); ``build()`` edits the model and returns it."""

    def __init__(self, model: Model) -> None:
        self.model_ = model
        self._inputs: dict[str, InputInfo] = {}
        self._outputs: dict[str, OutputInfo] = {}

    def input(self, key: str | int | Any = None) -> InputInfo:
        """The preprocessing of one input, by name, index or port (without one: the only input)."""
        port = find_port(list(self.model_.inputs), _key(key), "input")
        return self._inputs.setdefault(port.name, InputInfo(port))

    def output(self, key: str | int | Any = None) -> OutputInfo:
        """The postprocessing of one output, by name, index or port (without one: the only
        output)."""
        port = find_port(list(self.model_.outputs), _key(key), "output")
        return self._outputs.setdefault(port.name, OutputInfo(port))

    def build(self) -> Model:
        """Record the steps on the model (one edit) and return it, with its new ports."""
        from ember.preprocess.edit import build

        return build(self.model_, list(self._inputs.values()), list(self._outputs.values()))

    def __str__(self) -> str:
        lines = []
        for info in self._inputs.values():
            lines.append(f"Input {info.port.name!r}: " + ", ".join(
                name for name, _ in info._steps.steps))
        for out in self._outputs.values():
            lines.append(f"Output {out.port.name!r}: " + ", ".join(
                name for name, _ in out._steps.steps))
        return "\n".join(lines)


def _key(key: Any) -> Any:
    if key is None or isinstance(key, str | int):
        return key
    get_name = getattr(key, "get_any_name", None)
    return get_name() if get_name is not None else key
