"""``mlsysim-opt dashboard [NAME]``: serve a live dashboard (a marimo app, :mod:`mlsysim_opt.dashboards`)
on loopback at a free port, print its URL and run until interrupted; ``--list`` lists the dashboards.

    mlsysim-opt dashboard --list
    mlsysim-opt dashboard roofline            # http://127.0.0.1:PORT/ ; Ctrl-C stops it
    mlsysim-opt dashboard                     # a gallery of every dashboard
    mlsysim-opt dashboard capstone --open     # also opens it in the default browser

The dashboards need marimo: ``pip install "mlsysim_opt[dashboards]"``.
Exit codes: 0 served (stopped with Ctrl-C) or listed; 1 the server failed; 2 an unknown name or
marimo missing.
"""
from __future__ import annotations

import json

EXIT_OK, EXIT_FAILED, EXIT_BAD_INPUT = 0, 1, 2
LOOPBACK = ("127.0.0.1", "localhost", "::1")


def cmd_dashboard(args, console) -> int:
    from . import dashboards
    from .cli import report_error
    if args.list:
        if args.json:
            print(json.dumps([{"name": d.name, "summary": d.summary, "file": str(d.path)}
                              for d in dashboards.APPS.values()], indent=2))
        else:
            width = max(len(name) for name in dashboards.APPS)
            for d in dashboards.APPS.values():
                print(f"{d.name:<{width}}  {d.summary}")
        return EXIT_OK
    if args.name is not None and args.name not in dashboards.APPS:
        report_error(f"no dashboard {args.name!r}; choose from {', '.join(dashboards.APPS)} "
                     "(mlsysim-opt dashboard --list)")
        return EXIT_BAD_INPUT
    if not dashboards.marimo_installed():
        report_error(f"the dashboards need marimo, which is not installed: {dashboards.INSTALL_HINT}")
        return EXIT_BAD_INPUT
    try:
        server = dashboards.start(args.name, host=args.host, port=args.port, timeout=args.timeout)
    except dashboards.DashboardError as exc:
        report_error(str(exc))
        return EXIT_FAILED
    what = "dashboards" if args.name is None else f"{args.name} dashboard"
    stop_on = _stop_on_signals()
    try:
        if args.host not in LOOPBACK:
            from .cli import _err_console
            _err_console().print(f"[yellow]warning:[/] serving on {args.host}, beyond loopback: the dashboards have "
                                 "no login, anyone who reaches this address can use them")
        if args.json:
            print(json.dumps({"name": args.name or "gallery", "url": server.url, "pid": server.process.pid}),
                  flush=True)
        else:
            print(f"{what}: {server.url}", flush=True)
            print("press Ctrl-C to stop", flush=True)
        if args.open:
            import webbrowser
            webbrowser.open(server.url)
        code = server.process.wait()
    except KeyboardInterrupt:
        return EXIT_OK
    finally:
        server.stop()             # whatever ends this command (Ctrl-C, SIGTERM, a closed pipe) ends the server
        stop_on.restore()
    if code != 0:
        report_error(f"the {what} server stopped with status {code}")
        return EXIT_FAILED
    return EXIT_OK


class _stop_on_signals:
    """SIGTERM and SIGHUP end the command like Ctrl-C does (so the server it started is stopped)."""

    def __init__(self):
        import signal
        self._saved = {}
        for name in ("SIGTERM", "SIGHUP"):
            number = getattr(signal, name, None)
            if number is not None:
                try:
                    self._saved[number] = signal.signal(number, self._interrupt)
                except ValueError:        # not the main thread: leave the signals alone
                    pass

    @staticmethod
    def _interrupt(signum, frame):
        raise KeyboardInterrupt

    def restore(self) -> None:
        import signal
        for number, handler in self._saved.items():
            signal.signal(number, handler)


def register(sub, add) -> None:
    from .dashboards import APPS
    p = add("dashboard", cmd_dashboard, "serve a live dashboard in the browser (marimo app mode, loopback)")
    p.add_argument("name", nargs="?", default=None, metavar="NAME",
                   help=f"the dashboard: {', '.join(APPS)} (default: a gallery of all of them)")
    p.add_argument("--list", action="store_true", help="list the dashboards, one line each, and exit")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: loopback only)")
    p.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    p.add_argument("--open", action="store_true", help="open the dashboard in the default web browser")
    p.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for the server to start")
