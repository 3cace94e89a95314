"""``python -m nessa`` and ``torchrun -m nessa train``: the ``nessa`` command."""

import sys

from nessa.cli import main

sys.exit(main())
