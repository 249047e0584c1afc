"""`python -m thinkube_devpi.cli`: the same as `tk-devpi`."""

import sys

from thinkube_devpi.cli import main

sys.exit(main())
