"""``python -m leadscore``: the ``leadscore`` command (e.g. ``python -X importtime -m leadscore --help``)."""

from leadscore.cli import app

if __name__ == "__main__":
    app(prog_name="leadscore")
