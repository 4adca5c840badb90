"""``python -m bombo TOOL [options]``: run one of bombo's tools (see
:mod:`bombo.cli`; ``python -m bombo list`` lists them)."""
import sys

from bombo.cli import main

if __name__ == '__main__':
    sys.exit(main())
