"""`python -m telephony.cli`: the same as the `switchboard` command."""

import sys

from telephony.cli.main import main

sys.exit(main())
