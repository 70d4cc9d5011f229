"""``ember.opset11``: OpenVINO's ``opset11`` names; one implementation, :mod:`ember.opset`."""

from ember.opset import *  # noqa: F403
from ember.opset import __all__  # noqa: F401
