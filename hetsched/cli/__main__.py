import sys

from hetsched.cli import main

sys.exit(main())
