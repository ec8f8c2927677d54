"""``python -m jobrunner.cli``."""

from jobrunner.cli import main

main()
