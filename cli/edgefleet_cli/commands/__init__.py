"""One module per group of ``edgefleet`` verbs; :mod:`edgefleet_cli.main` mounts them."""
