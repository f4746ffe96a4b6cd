"""`python -m tgworkers` runs the command line."""

from tgworkers.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
