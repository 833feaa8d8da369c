import sys

from qa.campaign.cli import main

sys.exit(main())
