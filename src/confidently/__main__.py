"""``python -m confidently`` runs the command line (same as the ``confidently`` script)."""

from confidently.cli import main

if __name__ == "__main__":
    main()
