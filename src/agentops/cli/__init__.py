"""The command line: the Typer app (``app``), its run loop (``launch``), and how plans and the
history are rendered in the terminal (``plan``, ``history``)."""


def main() -> None:
    """Console entry point (``agentops``); the app is imported only when it runs."""
    from agentops.cli.app import main as run_app

    run_app()
