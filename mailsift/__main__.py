"""`python -m mailsift` is the `mailsift` command."""

from mailsift.cli import main

main()
