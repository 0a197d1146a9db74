"""`python -m switchboard_cli`: the same as the `switchboard` command."""

from switchboard_cli.main import main

main()
