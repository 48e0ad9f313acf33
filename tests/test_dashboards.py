"""The live dashboards, tested as a person uses them: each marimo app is served the way
``mlsysim-opt dashboard NAME`` serves it, a real headless Chromium (the system's package, driven by
Playwright) loads it, no cell may fail, a control is changed and the number shown must become the
value the library computes for the same inputs here; each app's screenshot is taken (into
docs/img/dashboards/ with MLSYSIM_OPT_SCREENSHOTS=docs/img/dashboards; docs/dashboards.md shows them).

Chromium comes from the system packages (Debian: ``apt-get install chromium``; .ci/run installs it);
``MLSYSIM_OPT_CHROMIUM`` names another executable. Playwright never downloads a browser here.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from mlsysim_opt import dashboards
from mlsysim_opt.cli import main

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[1]
# Screenshots go to a scratch folder, so a test run leaves the tree as it was; the ones in the docs
# are refreshed with MLSYSIM_OPT_SCREENSHOTS=docs/img/dashboards (docs/dashboards.md).
SCREENSHOTS = Path(os.environ.get("MLSYSIM_OPT_SCREENSHOTS") or tempfile.mkdtemp(prefix="mlsysim-dashboards-"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 "--disable-dev-shm-usage"]
RUN_TIMEOUT_MS = 60_000     # the first run of an app imports the package and compiles its sheets
UPDATE_TIMEOUT_MS = 30_000


# ------------------------------------------------------------------------------------------------
# The command line (no browser)


def test_list_names_every_dashboard_with_one_line_each(capsys):
    assert main(["dashboard", "--list"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert [line.split()[0] for line in lines] == list(dashboards.APPS)
    assert all(len(line.split(None, 1)[1]) > 20 for line in lines)
    for d in dashboards.APPS.values():
        assert d.path.is_file(), d.path


def test_list_as_json(capsys):
    assert main(["dashboard", "--list", "--json"]) == 0
    listed = json.loads(capsys.readouterr().out)
    assert [d["name"] for d in listed] == list(dashboards.APPS)


def test_an_unknown_dashboard_is_refused_with_the_known_names(capsys):
    assert main(["dashboard", "rooflin"]) == 2
    err = capsys.readouterr().err
    assert "no dashboard 'rooflin'" in err and "roofline" in err and "planning" in err


def test_without_marimo_the_error_says_how_to_install_it(capsys, monkeypatch):
    monkeypatch.setattr(dashboards, "marimo_installed", lambda: False)
    assert main(["dashboard", "roofline"]) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert 'pip install "mlsysim_opt[dashboards]"' in err
    with pytest.raises(dashboards.DashboardError, match="mlsysim_opt\\[dashboards\\]"):
        dashboards.start("roofline")


def test_the_server_listens_on_loopback_only_in_app_mode():
    cmd = dashboards.command("carbon", port=12345)
    assert cmd[1:4] == ["-m", "mlsysim_opt.dashboards._serve", "run"] and Path(cmd[4]) == dashboards.APPS["carbon"].path
    assert cmd[cmd.index("--host") + 1] == "127.0.0.1" and "--headless" in cmd
    assert Path(dashboards.command(None, port=1)[4]) == dashboards.HERE    # the gallery


# ------------------------------------------------------------------------------------------------
# The browser


def _chromium() -> str:
    path = os.environ.get("MLSYSIM_OPT_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
    if not Path(path).exists():
        pytest.fail(f"the dashboard tests need Chromium from the system packages and found none at {path}: "
                    "install it (Debian/Ubuntu: sudo apt-get install chromium; .ci/run does) or point "
                    "MLSYSIM_OPT_CHROMIUM at a Chromium executable", pytrace=False)
    return path


@pytest.fixture(scope="module")
def browser():
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail('the dashboard tests need Playwright: pip install -e ".[test]" (never `playwright install`: '
                    "the tests use the system's Chromium)", pytrace=False)
    executable = _chromium()
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=executable, headless=True, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@dataclass(frozen=True)
class Served:
    """One dashboard as a page of the gallery server."""
    name: str
    url: str
    gallery: dashboards.Server

    def _log_tail(self) -> str:
        return self.gallery._log_tail()


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """One gallery server for the module, the one ``mlsysim-opt dashboard`` starts without a name:
    each dashboard is a page of it (``?file=NAME.py``), and their sessions share one import of the
    package instead of five."""
    logs = tmp_path_factory.mktemp("dashboards")
    gallery = dashboards.start(None, log=logs / "gallery.log", timeout=60)
    try:
        yield {name: Served(name, f"{gallery.url}?file={d.path.name}", gallery) for name, d in dashboards.APPS.items()}
    finally:
        gallery.stop()


def _stopped_on_purpose(errors) -> bool:
    """A cell skipped because a cell above it stopped with ``mo.stop`` (an app's "pick a grid first"
    message) is reported on the error channel too; it is not a failure."""
    return bool(errors) and all(isinstance(e, dict) and e.get("type") == "ancestor-stopped" for e in errors)


class App:
    """One dashboard open in a browser tab. The marimo kernel's messages over the websocket tell
    when a run completes and whether a cell failed (app mode shows a failed cell only as a toast)."""

    def __init__(self, browser, server):
        self.server = server
        self.page = browser.new_page(viewport={"width": 1280, "height": 900})
        self.cells: list[str] = []
        self.status: dict[str, str] = {}
        self.errors: list[tuple[str, object]] = []
        self.runs = 0
        self.page.on("websocket", lambda ws: ws.on("framereceived", self._frame))
        self.page.goto(server.url, wait_until="commit")

    def _frame(self, payload) -> None:
        try:
            message = json.loads(payload if isinstance(payload, str) else payload.decode("utf-8", "replace"))
        except ValueError:
            return
        op, data = message.get("op"), message.get("data") or {}
        if op == "kernel-ready":
            self.cells = list(data.get("cell_ids") or [])
        elif op == "cell-op":
            if data.get("status"):
                self.status[data["cell_id"]] = data["status"]
            output = data.get("output") or {}
            if output.get("channel") == "marimo-error" and not _stopped_on_purpose(output.get("data")):
                self.errors.append((data.get("cell_id"), output.get("data")))
        elif op == "completed-run":
            self.runs += 1

    def wait_run(self, after: int = 0, timeout_ms: int = RUN_TIMEOUT_MS) -> None:
        """Waits until more than ``after`` runs have completed and every cell is idle."""
        deadline = time.monotonic() + timeout_ms / 1000
        while time.monotonic() < deadline:
            if self.runs > after and self.cells and all(self.status.get(c) == "idle" for c in self.cells):
                return
            self.page.wait_for_timeout(50)        # lets Playwright deliver the websocket frames
        raise AssertionError(f"{self.server.name}: no completed run within {timeout_ms} ms "
                             f"(cells: {self.status}){self.server._log_tail()}")

    def assert_no_cell_error(self) -> None:
        assert not self.errors, f"{self.server.name}: cells failed: {self.errors}{self.server._log_tail()}"
        body = self.page.inner_text("body")
        for sign in ("An internal error occurred", "Traceback (most recent call last)"):
            assert sign not in body, f"{self.server.name} shows {sign!r}{self.server._log_tail()}"

    def text(self, testid: str) -> str:
        return self.page.locator(f'[data-testid="{testid}"]').first.inner_text().strip()

    def expect_text(self, testid: str, expected: str, timeout_ms: int = UPDATE_TIMEOUT_MS) -> None:
        from playwright.sync_api import expect
        expect(self.page.locator(f'[data-testid="{testid}"]').first).to_have_text(expected, timeout=timeout_ms)

    def expect_number(self, testid: str, expected: float, *, rel: float, abs: float,
                      timeout_ms: int = UPDATE_TIMEOUT_MS) -> None:
        """Waits until the number shown (thousands separators allowed) is ``expected`` within the
        tolerances (for answers of a MILP solved to a relative gap)."""
        deadline = time.monotonic() + timeout_ms / 1000
        while True:
            shown = float(self.text(testid).replace(",", ""))
            if shown == pytest.approx(expected, rel=rel, abs=abs):
                return
            if time.monotonic() > deadline:
                assert shown == pytest.approx(expected, rel=rel, abs=abs), f"{self.server.name}: {testid}"
            self.page.wait_for_timeout(100)

    def control(self, tag: str, label: str):
        """The marimo control ``tag`` (marimo-slider, marimo-number, marimo-dropdown) with ``label``."""
        found = self.page.locator(f'{tag}[data-label*="{label}"]')
        assert found.count() == 1, f"{self.server.name}: {found.count()} {tag} labelled {label!r}"
        return found

    def set_number(self, label: str, value) -> None:
        field = self.control("marimo-number", label).locator("input")
        field.fill(str(value))
        field.press("Enter")

    def press_slider(self, label: str, *keys: str) -> None:
        thumb = self.control("marimo-slider", label).locator("[role=slider]")
        thumb.focus()
        for key in keys:
            thumb.press(key)

    def select(self, label: str, option: str) -> None:
        self.control("marimo-dropdown", label).locator("select").select_option(option)

    def change(self, action, *args) -> None:
        """Does ``action(*args)`` and waits for the run it causes."""
        before = self.runs
        action(*args)
        self.wait_run(after=before, timeout_ms=UPDATE_TIMEOUT_MS)

    def screenshot(self) -> Path:
        """The whole app (its scrolling area, not only the window) as docs/img/dashboards/NAME.png."""
        deadline = time.monotonic() + UPDATE_TIMEOUT_MS / 1000
        while not all(self.status.get(c) == "idle" for c in self.cells) and time.monotonic() < deadline:
            self.page.wait_for_timeout(50)                  # the last run drawn
        self.page.evaluate("document.activeElement && document.activeElement.blur()")   # no focus rings, tooltips
        height = self.page.evaluate("document.getElementById('App').scrollHeight")
        self.page.set_viewport_size({"width": 1280, "height": min(max(int(height) + 40, 900), 8000)})
        self.page.wait_for_timeout(300)
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{self.server.name}.png"
        self.page.screenshot(path=str(path))
        self.page.set_viewport_size({"width": 1280, "height": 900})
        return path


@pytest.fixture(scope="module")
def apps(browser, servers):
    """A tab per dashboard, opened together so that their kernels start side by side."""
    opened = {name: App(browser, server) for name, server in servers.items()}
    yield opened
    for app in opened.values():
        app.page.close()


def _opened(apps, name: str) -> App:
    app = apps[name]
    app.wait_run()
    app.assert_no_cell_error()
    return app


# ------------------------------------------------------------------------------------------------
# Each dashboard


def test_roofline_explorer_follows_the_context_the_batch_size_and_the_hardware(apps):
    from mlsysim_opt import Engine

    def solve(batch, seq_len=None, hardware="H100"):
        return Engine.solve("Llama3_8B", hardware, batch_size=batch, precision="fp16", efficiency=0.5,
                            seq_len=seq_len)

    app = _opened(apps, "roofline")
    first = solve(1)
    app.expect_text("latency-ms", f"{first.latency.m_as('ms'):.3f}")
    app.expect_text("bottleneck", first.bottleneck)

    short, large = solve(1, 128), solve(1024, 128)
    assert short.bottleneck == "Memory" and large.bottleneck == "Compute"   # the flip the app is about
    app.change(app.select, "context (tokens)", "128")
    app.expect_text("latency-ms", f"{short.latency.m_as('ms'):.3f}")
    app.change(app.press_slider, "batch size", "End")                    # batch 1 -> 1024
    app.expect_text("latency-ms", f"{large.latency.m_as('ms'):.3f}")
    app.expect_text("bottleneck", "Compute")
    app.expect_text("compute-ms", f"{large.latency_compute.m_as('ms'):.3f}")
    app.expect_text("memory-gb", f"{large.memory_footprint.m_as('GB'):.2f}")
    assert float(app.text("forward-ms")) >= 0      # the page shows its update time (targets: benchmarks/bench_dashboards.py)

    app.change(app.select, "hardware", "MI300X")
    other = solve(1024, 128, "MI300X")
    app.expect_text("latency-ms", f"{other.latency.m_as('ms'):.3f}")
    app.expect_text("fits", "yes" if other.feasible else f"NO: {other.infeasibility_reason}")
    app.assert_no_cell_error()
    assert app.screenshot().stat().st_size > 10_000


def test_serving_synthesizes_the_fleet_and_explains_an_impossible_sla(apps):
    from mlsysim_opt import synthesize

    def query(qps, ttft_ms=200):
        return synthesize("Llama3_8B", qps=qps, ttft=f"{ttft_ms} ms", itl="50 ms", percentile="p90",
                          hardware=["H100", "A100", "MI300X", "L4"], objective="tco", datacenter="US_Avg")

    app = _opened(apps, "serving")
    first = query(100)
    app.expect_text("replicas", str(first.best.replicas))
    app.expect_text("annual-cost", f"{first.best.annual_cost_usd:,.0f}")

    more = query(400)
    assert (more.best.replicas, round(more.best.annual_cost_usd)) != (first.best.replicas,
                                                                       round(first.best.annual_cost_usd))
    app.change(app.set_number, "load (requests/s)", 400)
    app.expect_text("replicas", str(more.best.replicas))
    app.expect_text("config", more.best.config.name)
    app.expect_text("accelerators", str(more.best.accelerators))
    app.expect_text("annual-cost", f"{more.best.annual_cost_usd:,.0f}")
    app.expect_text("carbon-t", f"{more.best.annual_carbon_t:,.1f}")
    app.expect_text("status", more.solve.status.value)
    assert float(app.text("solve-s")) >= 0         # shown; its target is measured in benchmarks/bench_dashboards.py
    app.assert_no_cell_error()
    assert app.screenshot().stat().st_size > 10_000

    impossible = query(400, ttft_ms=1)
    assert not impossible.feasible and impossible.explanation is not None
    app.change(app.set_number, "TTFT limit (ms)", 1)
    app.expect_text("explanation", impossible.explanation.summary)
    app.assert_no_cell_error()


def test_capstone_designer_grades_the_edited_design_and_exports_what_the_grader_reads(apps):
    import yaml

    from mlsysim_opt import CapstoneProblem
    from mlsysim_opt.grading import Grader

    grader = Grader(CapstoneProblem.from_scenario("Capstone"))

    def submission(eu_west_replicas):
        return {"student": "Ada", "regions": {
            "US_East": {"hardware": "H100", "precision": "fp8", "tp": 4, "pp": 1, "batch_size": 128,
                        "chunk_tokens": 512, "replicas": 20},
            "EU_West": {"hardware": "MI300X", "precision": "fp8", "tp": 2, "pp": 1, "batch_size": 128,
                        "chunk_tokens": 512, "replicas": eu_west_replicas}}}

    app = _opened(apps, "capstone")
    start, edited = grader.grade(submission(20)), grader.grade(submission(30))
    assert start.score != edited.score
    app.expect_text("score", f"{start.score:.1f}")
    app.expect_text("optimal-cost", f"{grader.optimum.annual_cost_usd:,.0f}")

    app.change(app.set_number, "EU_West replicas", 30)
    app.expect_text("score", f"{edited.score:.1f}")
    app.expect_text("annual-cost", f"{edited.annual_cost_usd:,.0f}")
    app.expect_text("annual-carbon", f"{edited.annual_carbon_t:,.1f}")

    exported = app.page.locator('[data-testid="submission-yaml"]').first.inner_text()
    assert yaml.safe_load(exported) == submission(30)
    assert grader.grade(exported).score == edited.score          # the grader reads the export as is
    app.assert_no_cell_error()
    assert app.screenshot().stat().st_size > 10_000


def test_carbon_geography_follows_the_duration(apps):
    from mlsysim_opt import Infra, SustainabilityModel, Systems

    def run(days, grid):
        return SustainabilityModel().solve(Systems.Clusters.Research_256, duration_days=days,
                                           datacenter=Infra.Grids[grid], utilization=1.0)

    app = _opened(apps, "carbon")
    app.expect_text("carbon-Poland", f"{run(30, 'Poland').carbon_footprint_kg / 1e3:,.1f}")
    assert f"{run(30, 'Poland').carbon_footprint_kg:.0f}" != f"{run(31, 'Poland').carbon_footprint_kg:.0f}"
    app.change(app.press_slider, "duration (days)", "ArrowRight")                    # 30 -> 31 days
    for grid in ("Quebec", "Poland", "US_Avg"):
        r = run(31, grid)
        app.expect_text(f"carbon-{grid}", f"{r.carbon_footprint_kg / 1e3:,.1f}")
        app.expect_text(f"energy-{grid}", f"{r.total_energy_kwh / 1e3:,.1f}")
        app.expect_text(f"water-{grid}", f"{r.water_usage_liters / 1e3:,.1f}")
    app.expect_text("it-energy", f"{run(31, 'Quebec').it_energy_kwh / 1e3:,.1f}")
    app.assert_no_cell_error()
    assert app.screenshot().stat().st_size > 10_000


def test_global_planning_follows_a_metros_peak(apps):
    from mlsysim_opt.planning import Demand, PlanProblem, RequestClass, plan_fleet

    def plan(virginia_peak):
        problem = PlanProblem(
            name="dashboard", model="Llama3_8B",
            classes=[RequestClass(name="chat", prompt_len=512, output_len=256, ttft_ms=300, itl_ms=80)],
            demand=Demand.diurnal({"Virginia": virginia_peak, "Frankfurt": 250, "Tokyo": 200}, days=1,
                                  request_class="chat"),
            sites=["aws_us_east_1", "aws_eu_north_1", "aws_ap_northeast_1"], hardware=["H100"],
            precisions=["fp8"], tp_sizes=[1], batch_sizes=[64], kinds=["reserved_1y", "on_demand", "spot"],
            objective="cost", carbon_price_usd_per_t=0)
        return plan_fleet(problem, time_limit=30)

    app = _opened(apps, "planning")
    before = plan(300)
    app.expect_number("plan-cost", before.cost_usd, rel=1e-4, abs=1)
    app.change(app.press_slider, "Virginia peak", "ArrowRight")                # 300 -> 325 requests/s
    after = plan(325)
    assert after.cost_usd > before.cost_usd * 1.005
    app.expect_number("plan-cost", after.cost_usd, rel=1e-4, abs=1)
    app.expect_text("plan-status", after.solve.status.value)
    app.expect_number("plan-carbon", after.carbon_t, rel=1e-3, abs=1e-3)
    app.expect_number("plan-energy", after.energy_mwh, rel=1e-3, abs=0.01)
    app.assert_no_cell_error()
    assert app.screenshot().stat().st_size > 10_000


def test_the_command_serves_a_gallery_of_every_dashboard_and_stops_on_ctrl_c(browser):
    process = subprocess.Popen([sys.executable, "-m", "mlsysim_opt.cli", "dashboard"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, start_new_session=True)
    try:
        line = process.stdout.readline().strip()
        match = re.fullmatch(r"dashboards: (http://127\.0\.0\.1:(\d+)/)", line)
        assert match, line
        page = browser.new_page()
        try:
            page.goto(match.group(1))
            for d in dashboards.APPS.values():
                page.get_by_text(d.name.capitalize(), exact=True).first.wait_for(timeout=RUN_TIMEOUT_MS)
        finally:
            page.close()
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        with pytest.raises(OSError):               # the server went with it
            urllib.request.urlopen(match.group(1), timeout=2)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
