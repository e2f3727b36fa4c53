from graphdoc.cli import main

raise SystemExit(main())
