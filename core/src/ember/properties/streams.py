"""OpenVINO's ``openvino.properties.streams``: the number of parallel inference streams."""

from __future__ import annotations

from ember.properties import NUM_STREAMS
from ember.properties._property import Property


class Num(int):
    """A stream count; ``Num.AUTO`` lets the performance hint decide."""

    AUTO: Num
    NUMA: Num


Num.AUTO = Num(-1)
Num.NUMA = Num(-2)

num = Property(NUM_STREAMS)
