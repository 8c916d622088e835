from bfxd.cli import main

raise SystemExit(main())
