"""`python -m thinkube_devpi.cli`: the same as `tk-devpi`, shell completion included."""

import sys

from thinkube_devpi.cli import main

sys.exit(main(prog_name="tk-devpi", complete_var="_TK_DEVPI_COMPLETE"))
