import sys

from localaws.server import main

sys.exit(main())
