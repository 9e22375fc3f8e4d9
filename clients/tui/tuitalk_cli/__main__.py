"""``python -m tuitalk_cli``: same as the ``tuitalk-cli`` entry point."""

from tuitalk_cli.app import main

main()
