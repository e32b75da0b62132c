import sys

from image_tagger.pullrequest.action import main

sys.exit(main())
