"""``python -m mnist_fast``: the ``mnist-fast`` command."""

import sys

from .cli import main

sys.exit(main())
