import sys

from rlsurrogate.cli import main

sys.exit(main())
