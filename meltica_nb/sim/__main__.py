"""``python -m meltica_nb.sim``: the same as ``meltica sim``."""

import sys

from meltica_nb.sim.server import main

sys.exit(main())
