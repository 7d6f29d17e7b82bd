"""``sparkml-ops server`` and ``sparkml-ops ui``: MLflow's tracking server and web UI over a root."""

from __future__ import annotations

import click

from sparkml_ops.cli.options import root_option


@click.command("server")
@root_option
@click.option("--host", default="127.0.0.1", show_default=True,
              help="address to bind; a non-loopback address needs --auth or --insecure")
@click.option("--port", default=5000, show_default=True, type=click.IntRange(0, 65535), help="port to listen on")
@click.option("--workers", default=1, show_default=True, type=click.IntRange(1, 64),
              help="server processes, all writing the same root")
@click.option("--auth", is_flag=True, help="MLflow's basic-auth app: users and per-experiment permissions "
              "(user database under <root>/_auth; first admin password from $SPARKML_OPS_ADMIN_PASSWORD "
              "or --admin-password-file)")
@click.option("--admin-password-file", type=click.Path(dir_okay=False), default=None,
              help="file holding the first admin's password (never pass a password on the command line)")
@click.option("--insecure", is_flag=True, help="allow a non-loopback --host without --auth")
@click.option("--max-body-mb", default=64, show_default=True, type=click.IntRange(1, 4096),
              help="largest REST request body in MiB (artifact uploads are not limited)")
def server(root: str | None, host: str, port: int, workers: int, auth: bool, admin_password_file: str | None,
           insecure: bool, max_body_mb: int) -> None:
    """MLflow's tracking server and web UI over one root (tracking, registry and artifacts in Delta tables)."""
    from sparkml_ops import config
    from sparkml_ops.server.run import serve
    from sparkml_ops.server.settings import ServerSettings

    settings = ServerSettings(tracking_uri=config.tracking_uri(root), host=host, port=port, workers=workers,
                              auth=auth, insecure=insecure, admin_password_file=admin_password_file,
                              max_body_bytes=max_body_mb * 1024 * 1024)
    click.echo(f"sparkml-ops server for {settings.tracking_uri} at {settings.url}", err=True)
    serve(settings)


@click.command("ui")
@root_option
@click.option("--no-browser", is_flag=True, help="only print the URL")
def ui(root: str | None, no_browser: bool) -> None:
    """The web UI for one person: 127.0.0.1, a free port, the URL printed (and opened in a browser)."""
    from sparkml_ops import config
    from sparkml_ops.server.run import ui as run_ui

    run_ui(config.tracking_uri(root), open_browser=not no_browser)
