"""``python -m ember.compat.openvino``: see :mod:`ember.compat.openvino.runner`."""

import sys

from ember.compat.openvino.runner import main

if __name__ == "__main__":
    sys.exit(main())
