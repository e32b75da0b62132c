from image_tagger.cli import main

raise SystemExit(main())
