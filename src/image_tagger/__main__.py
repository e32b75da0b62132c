from image_tagger.entry.cli import main

raise SystemExit(main())
