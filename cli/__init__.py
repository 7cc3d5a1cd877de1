"""The `xadt` command line: thin typer commands over the functions in `xadt`."""
