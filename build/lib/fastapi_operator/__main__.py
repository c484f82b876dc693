"""`python -m fastapi_operator`, what the image runs: the same as the `fastapi-operator` command."""

import sys

from .cli import main

sys.exit(main())
