"""``ember.opset10``: OpenVINO's ``opset10`` names; one implementation, :mod:`ember.opset`."""

from ember.opset import *  # noqa: F403
from ember.opset import __all__  # noqa: F401
