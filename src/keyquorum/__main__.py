"""``python -m keyquorum``: the keyquorum command line."""

from keyquorum.cli.main import run

if __name__ == "__main__":
    run()
