"""`assessor demo`: the whole product in one command (accounts, sample repositories, then the server)."""

import os

import click

from assessor.config import resolve_paths


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(1, 65535), default=8000, show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True,
              help="Assessment jobs run at once by the embedded worker.")
@click.pass_context
def demo(ctx: click.Context, host: str, port: int, workers: int) -> None:
    """Set up a demo (a mentor and a learner with new passwords, two sample capstones) and serve it.

    Safe to run again: the accounts and sample repositories are reused, and the passwords are reset and printed.
    Local git sources are allowed for this process and its worker only.
    """
    from assessor.domain import demo as demo_data
    from assessor.cli.admin import _app, _init_database, serve, write_secret_key

    # Before the app is made, so its config (and the worker subprocess, which inherits the environment) has it.
    os.environ["ASSESSOR_ALLOW_LOCAL_SOURCES"] = "true"
    os.environ["ASSESSOR_LOCAL_SOURCE_ROOTS"] = str(resolve_paths().instance / demo_data.DEMO_FOLDER)
    # The demo's learners submit the shipped samples themselves: every attempt would be a near copy of one.
    os.environ.setdefault("ASSESSOR_INTEGRITY_SAMPLES", "false")
    # Mail (verification, resets, notifications) goes to a real SMTP server of the demo's own, saved as files.
    mailbox = demo_data.DemoMailbox(resolve_paths().instance / demo_data.DEMO_FOLDER / "mail")
    os.environ["ASSESSOR_SMTP_HOST"] = "127.0.0.1"
    os.environ["ASSESSOR_SMTP_PORT"] = str(mailbox.start())
    os.environ["ASSESSOR_SMTP_SECURITY"] = "none"
    # A short, readable start: the queue's and the server's routine lines are for operators (warnings still show).
    os.environ.setdefault("ASSESSOR_LOG_LEVEL", "WARNING")
    shown_host = "127.0.0.1" if host in ("0.0.0.0", "::", "") else host
    # Certificates' QR codes and verify links must open this demo server.
    os.environ.setdefault("ASSESSOR_PUBLIC_URL", f"http://{shown_host}:{port}")
    instance = resolve_paths().instance
    write_secret_key(instance)
    app = _app()
    _init_database(app)
    setup = demo_data.prepare_demo(app.extensions["assessor.engine"], instance)
    app.extensions["assessor.engine"].dispose()
    click.echo(demo_data.describe(setup, f"http://{shown_host}:{port}/"))
    click.echo(f"Mail goes to the demo's own SMTP server (port {os.environ['ASSESSOR_SMTP_PORT']}); each message "
               f"is saved in {mailbox.folder}\n")
    try:
        ctx.invoke(serve, host=host, port=port, threads=8, workers=workers)
    finally:
        mailbox.stop()
