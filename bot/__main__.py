"""`python -m bot` is the firebreak command."""

from bot.root.cli import main

main()
