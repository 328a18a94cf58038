"""`python -m bot` is the firebreak command."""

from bot.cli import main

main()
