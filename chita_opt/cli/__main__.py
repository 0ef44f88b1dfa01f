"""``python -m chita_opt.cli``: the ``chita-opt`` command."""

import sys

from chita_opt.cli import main

sys.exit(main())
