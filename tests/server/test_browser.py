"""Every page of MLflow's web UI over ``sparkml-ops server``, in Debian's Chromium.

Both servers get the same quickstart data over HTTP (MLflow's stock client); ours also gets
a 10,000-run experiment and a 100,000-step metric, written through our store's bulk path.
A page fails when it shows a failed request (4xx/5xx) or a console error that MLflow's own
server on SQLite does not show for the same page and data. Screenshots are kept under the
test's temporary directory (``pytest --basetemp DIR`` to keep them somewhere known); the
path is printed. Time is measured by ``bench/bench_server.py``; here only correctness.
"""

from __future__ import annotations

import contextlib
import json
import threading
import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pytest
import requests

from tests.server.seed import Scale, Seeded, fill_scale, seed
from tests.server.serverproc import Server, mlflow_sqlite_server, sparkml_server
from tests.server.tour import PageReport, Tour, browser

SCALE_RUNS = 10_000
LONG_STEPS = 100_000
BULK_INTERVAL = "/ajax-api/2.0/mlflow/metrics/get-history-bulk-interval"

Step = tuple[str, Callable[[Any], None]]


@dataclass(frozen=True)
class Visit:
    name: str
    route: str
    expect: tuple[str, ...] = ()  # texts the page must show
    steps: tuple[Step, ...] = ()


def _plot_tab(tab: str) -> Callable[[Any], None]:
    """Open one of the compare page's plot tabs; a Plotly plot must render in it."""
    def show(page: Any) -> None:
        page.get_by_text(tab, exact=True).first.click()
        page.locator(".js-plotly-plot").filter(visible=True).first.wait_for(state="visible")
    return show


def _preview_mlmodel(page: Any) -> None:
    """Click the model's MLmodel file: its YAML (flavors, signature) is previewed."""
    page.get_by_text("MLmodel", exact=True).filter(visible=True).first.click()
    page.get_by_text("flavors", exact=False).filter(visible=True).first.wait_for(state="visible")


def _open_artifact(folder: str, file: str, shows: Callable[[Any], None]) -> Callable[[Any], None]:
    """Click ``folder`` then ``file`` in the run's artifact tree; ``shows`` checks the preview."""
    def step(page: Any) -> None:
        page.get_by_text(folder, exact=True).filter(visible=True).first.click()
        page.get_by_text(file, exact=True).filter(visible=True).first.click()
        shows(page)
    return step


def _text_shown(text: str) -> Callable[[Any], None]:
    return lambda page: page.get_by_text(text, exact=False).filter(visible=True).first.wait_for(state="visible")


def _image_shown(page: Any) -> None:
    """The PNG preview is a decoded image of the logged size (64 x 48), not a broken icon."""
    page.wait_for_function("() => Array.from(document.images).some(i => i.naturalWidth === 64 && "
                           "i.naturalHeight === 48)")


def _choose_columns(page: Any) -> None:
    """Show the ``depth`` param column through the runs table's column selector."""
    page.get_by_role("button", name="Columns").first.click()
    page.get_by_text("depth", exact=True).last.click()
    page.keyboard.press("Escape")
    page.get_by_role("columnheader", name="depth").first.wait_for(state="visible")


def _sort_by_lr(page: Any) -> None:
    """Sort by the ``lr`` param (descending, as strings: trial-0's "0.1" first), checked on screen."""
    page.get_by_role("button", name="Sort: Created").first.click()
    page.get_by_role("menuitemcheckbox", name="lr", exact=True).first.click()
    page.get_by_role("button", name="Sort: lr").first.wait_for(state="visible")
    page.wait_for_timeout(1000)  # the grid re-renders the rows
    heights = [page.get_by_role("link", name=f"trial-{k}", exact=True).first.bounding_box()["y"] for k in range(3)]
    assert heights == sorted(heights), f"rows not in lr order (trial-0, 1, 2 at y={heights})"


def _filter_accuracy(page: Any) -> None:
    """A search filter typed into the runs table: trial-0 (accuracy 0.6) leaves the table."""
    page.get_by_placeholder("metrics.rmse").first.fill("metrics.accuracy > 0.65")
    page.keyboard.press("Enter")
    page.get_by_text("2 matching runs").first.wait_for(state="visible")
    assert page.get_by_role("link", name="trial-0", exact=True).count() == 0, "trial-0 still listed"


def _pages(s: Seeded) -> list[Visit]:
    """The tour over the quickstart data (ids are the seeded server's own)."""
    e, r0, m = s.experiment_id, s.run_ids[0], s.model_id
    run = f"/experiments/{e}/runs/{r0}"
    runs = f"/experiments/{e}/runs"
    compare = "/compare-runs?" + urllib.parse.urlencode({"runs": json.dumps(s.run_ids), "experiments": json.dumps([e])})
    return [
        Visit("experiments-list", "/experiments", ("quickstart",)),
        Visit("runs-table", runs, ("trial-0", "trial-1", "trial-2"),
              steps=(("columns", _choose_columns), ("sorted", _sort_by_lr), ("filtered", _filter_accuracy))),
        Visit("run-overview", run, ("Trial 0: learning rate 0.1", "lr", "depth", "loss", "accuracy", "team",
                                    "train", "model")),
        Visit("run-artifacts", f"{run}/artifacts", ("notes", "plots", "config"), steps=(
            ("text", _open_artifact("notes", "readme.txt", _text_shown("lr=0.1"))),
            ("image", _open_artifact("plots", "curve.png", _image_shown)),
            ("json", _open_artifact("config", "params.json", _text_shown('"depth"'))))),
        Visit("run-model-metrics", f"{run}/model-metrics", ("loss",)),
        Visit("logged-models", f"/experiments/{e}/models", ("model",)),
        Visit("logged-model", f"/experiments/{e}/models/{m}", ("model",)),
        Visit("logged-model-artifacts", f"/experiments/{e}/models/{m}/artifacts", ("MLmodel", "model.skops"),
              steps=(("mlmodel", _preview_mlmodel),)),
        Visit("compare-runs", compare, ("trial-1", "Parallel Coordinates Plot"),
              steps=tuple((tab.split()[0].lower(), _plot_tab(tab))
                          for tab in ("Parallel Coordinates Plot", "Scatter Plot", "Contour Plot"))),
        Visit("registered-models", "/models", (s.model_name,)),
        Visit("registered-model", f"/models/{s.model_name}", ("champion", "Version 1")),
        Visit("model-version", f"/models/{s.model_name}/versions/1", ("champion",)),
        Visit("genai-overview", f"/experiments/{e}/overview/usage"),
        Visit("genai-traces", f"/experiments/{e}/traces"),
        Visit("genai-sessions", f"/experiments/{e}/chat-sessions"),
        Visit("genai-evaluation", f"/experiments/{e}/evaluation-runs"),
        Visit("genai-datasets", f"/experiments/{e}/datasets"),
        Visit("genai-judges", f"/experiments/{e}/judges"),
        Visit("prompts", "/prompts"),
        Visit("gateway", "/gateway"),
    ]


@pytest.fixture(scope="module")
def servers(tmp_path_factory):
    """(ours, reference, our seeded ids, reference seeded ids, scale ids, base dir), all running."""
    base = tmp_path_factory.mktemp("browser")
    root = base / "lake"
    scale = fill_scale(root, runs=SCALE_RUNS, steps=LONG_STEPS, name="ten-thousand")
    with contextlib.ExitStack() as stack:
        started: dict[str, Any] = {}

        def start_reference() -> None:
            try:
                started["ref"] = stack.enter_context(mlflow_sqlite_server(base / "sqlite", base / "reference.log"))
                started["seeded"] = seed(started["ref"].url)
            except Exception as exc:  # noqa: BLE001 - re-raised in the test's thread below
                started["error"] = exc

        reference_thread = threading.Thread(target=start_reference)
        reference_thread.start()  # both servers start (and are seeded) at once
        ours = stack.enter_context(sparkml_server(root, base / "ours.log"))
        seeded_ours = seed(ours.url)
        reference_thread.join()
        if "error" in started:
            raise started["error"]
        yield ours, started["ref"], seeded_ours, started["seeded"], scale, base


@pytest.mark.timeout(1800)  # two servers and ~25 pages: ~3 minutes on a quiet machine, far more under load
def test_every_page_works_like_mlflow_on_sqlite(servers):
    ours, reference, seeded_ours, seeded_ref, scale, base = servers
    shots = base / "screenshots"
    (shots / "ours").mkdir(parents=True)
    (shots / "reference").mkdir(parents=True)
    print(f"\nscreenshots: {shots}")
    failures: list[str] = []
    with browser() as chromium:
        tour = Tour(chromium, ours.url, shots / "ours", _ids(seeded_ours))
        ref_tour = Tour(chromium, reference.url, shots / "reference", _ids(seeded_ref))
        ref_visits = {v.name: v for v in _pages(seeded_ref)}
        for visit in _pages(seeded_ours):
            report = tour.visit(visit.name, visit.route, wait_for=visit.expect[0] if visit.expect else None,
                                steps=visit.steps)
            failures += _content_failures(visit, report)
            failures += _beyond_reference(report, ref_tour, ref_visits[visit.name])
        failures += _scale_pages(tour, ref_tour, ref_visits, scale, ours)
        tour.close()
        ref_tour.close()
    assert not failures, "\n".join(failures)


def _content_failures(visit: Visit, report: PageReport) -> list[str]:
    missing = [t for t in visit.expect if t not in report.text]
    return [f"{visit.name} ({report.url}): {missing} not shown; screenshot {report.screenshot}"] if missing else []


def _beyond_reference(report: PageReport, ref_tour: Tour, ref_visit: Visit) -> list[str]:
    """Problems of our page that MLflow's server does not also show on the same page."""
    if not report.problems:
        return []  # only then is the reference's page needed
    ref_report = ref_tour.visit(report.name, ref_visit.route, steps=ref_visit.steps)
    extra = report.problems - ref_report.problems
    return [f"{report.name} ({report.url}): {sorted(extra)}"] if extra else []


def _scale_pages(tour: Tour, ref_tour: Tour, ref_visits: dict[str, Visit], scale: Scale, ours: Server) -> list[str]:
    """The 10,000-run runs table (newest first) and the chart of the 100,000-step history."""
    e = scale.experiment_id
    newest = Scale.run_name(scale.runs - 1)
    table = tour.visit("scale-runs-table", f"/experiments/{e}/runs", wait_for=newest)
    print(f"10,000-run experiment: first rows shown {table.shown_s:.2f} s after navigation "
          "(the 2 s target is measured by bench/bench_server.py)")
    chart = tour.visit("scale-metric-chart", f"/experiments/{e}/runs/{scale.long_run}/model-metrics",
                       wait_for="acc")
    failures = _content_failures(Visit("scale-runs-table", "", (newest, Scale.run_name(scale.runs - 2))), table)
    failures += _beyond_reference(table, ref_tour, ref_visits["runs-table"])
    failures += _beyond_reference(chart, ref_tour, ref_visits["run-model-metrics"])
    failures += _downsampled(chart, ours, scale)
    return failures


def _downsampled(chart: PageReport, ours: Server, scale: Scale) -> list[str]:
    """The chart asked for the history through bulk-interval and got a sample spanning it."""
    asked = [r for r in chart.requests if r.startswith(BULK_INTERVAL) and "metric_key=acc" in r]
    if not asked:
        return [f"scale-metric-chart: no {BULK_INTERVAL} request for 'acc'; requests: {chart.requests}"]
    query = urllib.parse.parse_qs(urllib.parse.urlsplit(asked[0]).query)
    points = requests.get(ours.url + asked[0], timeout=120).json()["metrics"]
    steps = [p["step"] for p in points]
    limit = int(query.get("max_results", ["1000"])[0])
    if not (2 <= len(points) <= limit and min(steps) == 0 and max(steps) == scale.steps - 1):
        return [f"scale-metric-chart: {len(points)} points (limit {limit}), steps {min(steps)}..{max(steps)}"]
    return []


def _ids(s: Seeded) -> dict[str, str]:
    ids = {s.experiment_id: "experiment", s.model_id: "model"}
    ids.update({run_id: f"run{k}" for k, run_id in enumerate(s.run_ids)})
    return ids
