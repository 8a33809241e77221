"""The real Dagster UI in a headless Chromium, driven by Playwright, against `dagster dev -w workspace.yaml`.

The module starts `dagster dev` once (a fresh DAGSTER_HOME with an empty dagster.yaml, a free port on
127.0.0.1, its own process group, killed as a group at teardown) and one headless Chromium
(/usr/bin/chromium; installed with apt-get when missing, the module skipped only when that fails).

Cases:
- the lineage page of the `dev` asset group draws its six assets, each node found by its visible
  label, which names stage and environment (dev_manifests, dev_deployed, dev_schema, dev_backups,
  dev_backups_verified, dev_status), and its list view names all six;
- the `render_and_check_dev` job, reached from the Jobs page, opens its launchpad with no config
  errors, "Materialize" launches a run, and the run page shows the run reach "Success", with the
  asset step and its four blocking check steps succeeded and none errored;
- after that run, the daemon's `status_refresh_dev` sensor materializes `dev_status`, and the `dev_status`
  asset page shows the status table: nothing deployed, the four bundle checks passed and the others
  never ran (so checks do not pass), schema and backup unknown.

Screenshots go to tests/artifacts/ (gitignored): ui_asset_graph_dev.png, ui_asset_list_dev.png,
ui_job_render_and_check_dev.png, ui_launchpad_render_and_check_dev.png, ui_run_render_and_check_dev.png,
ui_status_dev.png.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
LOCATION = "llm_cost_ops_ops"
JOB = "render_and_check_dev"
DEV_ASSETS = (
    "dev_manifests",
    "dev_deployed",
    "dev_schema",
    "dev_backups",
    "dev_backups_verified",
    "dev_status",
)
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"
BIN = Path(sys.executable).parent

SERVER_START_TIMEOUT_S = 90
UI_TIMEOUT_MS = 30_000
RUN_TIMEOUT_MS = 60_000
STATUS_TIMEOUT_S = 120


@dataclass
class DagsterUI:
    base_url: str
    log_path: Path

    def log_tail(self, lines: int = 40) -> str:
        text = self.log_path.read_text(errors="replace") if self.log_path.exists() else ""
        return "\n".join(text.splitlines()[-lines:])


def _ensure_chromium() -> None:
    if CHROMIUM.exists():
        return
    apt_get = shutil.which("apt-get")
    if apt_get is None or os.geteuid() != 0:
        pytest.skip(f"{CHROMIUM} is missing and cannot be installed here (needs root and apt-get)")
    for cmd in ([apt_get, "update", "-qq"], [apt_get, "install", "-y", "-qq", "chromium"]):
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
        if done.returncode != 0:
            pytest.skip(f"{CHROMIUM} is missing and `{' '.join(cmd)}` failed: {done.stderr[-500:]}")
    if not CHROMIUM.exists():
        pytest.skip(f"apt-get install chromium did not provide {CHROMIUM}")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _wait_for_server(proc: subprocess.Popen, url: str, ui: DagsterUI) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"dagster dev exited with {proc.returncode}:\n{ui.log_tail()}")
        with (
            contextlib.suppress(OSError),
            urllib.request.urlopen(f"{url}/server_info", timeout=2) as response,
        ):
            if response.status == 200:
                return
        time.sleep(0.5)
    pytest.fail(f"dagster dev did not answer on {url} within {SERVER_START_TIMEOUT_S}s:\n{ui.log_tail()}")


@pytest.fixture(scope="module")
def dagster_ui(project_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DagsterUI]:
    """`dagster dev -w workspace.yaml` on a free port, in its own process group, on a fresh instance."""
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("")
    port = _free_port()
    ui = DagsterUI(base_url=f"http://127.0.0.1:{port}", log_path=home / "dagster_dev.log")
    env = {**os.environ, "DAGSTER_HOME": str(home)}
    env.pop("LLM_COST_OPS_OPS_ROOT", None)
    with ui.log_path.open("wb") as log:
        proc = subprocess.Popen(
            [str(BIN / "dagster"), "dev", "-w", "workspace.yaml", "-h", "127.0.0.1", "-p", str(port)],
            cwd=project_root,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            # `dagster dev` (webserver, daemon, code server) ignores SIGTERM when not in the
            # foreground: the whole group is killed at teardown.
            start_new_session=True,
        )
    try:
        _wait_for_server(proc, ui.base_url, ui)
        yield ui
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)


@pytest.fixture(scope="module")
def browser() -> Iterator:
    _ensure_chromium()
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


@pytest.fixture
def page(browser, dagster_ui: DagsterUI):
    context = browser.new_context(viewport={"width": 1600, "height": 1000}, base_url=dagster_ui.base_url)
    # The first visit opens a "Join the Dagster community" dialog over the page; mark it as seen.
    context.add_init_script("window.localStorage.setItem('communityNux', '1')")
    context.set_default_timeout(UI_TIMEOUT_MS)
    page = context.new_page()
    try:
        yield page
    finally:
        context.close()


def _screenshot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / name
    page.screenshot(path=str(path))
    return path


def _shows(label: str, key: str) -> bool:
    """Whether a node title shows `key`: in full, or shortened in the middle with an ellipsis."""
    head, ellipsis, tail = label.partition("…")
    return label == key or bool(ellipsis and key.startswith(head) and key.endswith(tail) and head and tail)


def test_asset_graph_shows_dev_assets(page, dagster_ui: DagsterUI):
    page.goto(f"/locations/{LOCATION}/asset-groups/dev/lineage", wait_until="domcontentloaded")
    # Graph nodes are titled by the last part of the key, which names stage and environment. Zoomed
    # out to fit the group, the UI shortens a long title in the middle ("dev_back…_verified").
    nodes = page.locator("foreignObject")
    try:
        nodes.filter(has_text=re.compile(r"^dev_status$")).first.wait_for(state="visible")
    except Exception as error:
        _screenshot(page, "ui_asset_graph_dev.png")
        raise AssertionError(
            f"{error}\npage text:\n{page.inner_text('body')[:2000]}\ndagster dev log:\n{dagster_ui.log_tail()}"
        ) from error
    labels = sorted(nodes.nth(i).text_content() or "" for i in range(nodes.count()))
    found = {key: [label for label in labels if _shows(label, key)] for key in DEV_ASSETS}
    assert all(len(matches) == 1 for matches in found.values()), (labels, found)
    assert len(labels) == len(DEV_ASSETS) and all(label.startswith("dev_") for label in labels), labels
    page.wait_for_timeout(500)  # the graph zooms to fit after the nodes mount
    _screenshot(page, "ui_asset_graph_dev.png")

    # The list view names every asset of the group by its full key.
    page.goto(f"/locations/{LOCATION}/asset-groups/dev/list", wait_until="domcontentloaded")
    for key in DEV_ASSETS:
        link = page.locator(f'a[href="/assets/{key}"]').first
        link.wait_for(state="visible")
        assert link.inner_text().split("\n")[0] == key
    _screenshot(page, "ui_asset_list_dev.png")


def test_launch_render_and_check_dev_from_launchpad(page, dagster_ui: DagsterUI):
    # Jobs -> render_and_check_dev
    page.goto("/jobs", wait_until="domcontentloaded")
    page.locator(f'a[href="/locations/{LOCATION}/jobs/{JOB}"]').first.click()
    page.wait_for_url(re.compile(rf"/jobs/{JOB}(\?|/|$)"))
    materialize = page.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).first
    materialize.wait_for(state="visible")
    _screenshot(page, "ui_job_render_and_check_dev.png")

    # The caret beside "Materialize" -> "Open launchpad"
    materialize.locator("xpath=following::button[1]").click()
    page.get_by_text("Open launchpad", exact=True).click()
    dialog = page.get_by_role("dialog")
    dialog.get_by_text("No errors").wait_for(state="visible")
    assert "dev_manifests" in dialog.locator("input").first.input_value()
    _screenshot(page, "ui_launchpad_render_and_check_dev.png")

    # Launch; the UI reports the launched run with a link to it (or opens it).
    dialog.locator("button", has_text=re.compile(r"^\s*Materialize\s*$")).click()
    run_link = page.locator('a[href*="/runs/"]').filter(has_text=re.compile(r"view", re.IGNORECASE))
    deadline = time.monotonic() + UI_TIMEOUT_MS / 1000
    while not re.search(r"/runs/[0-9a-f-]{36}", page.url):
        if run_link.count():
            run_link.first.click()
            continue
        assert time.monotonic() < deadline, f"no run launched; page text:\n{page.inner_text('body')[:2000]}"
        page.wait_for_timeout(250)
    run_id = re.search(r"/runs/([0-9a-f-]{36})", page.url).group(1)

    # The run page follows the run live; its status tag turns to "Success" (or "Failure").
    status = page.get_by_text(re.compile(r"^(Success|Failure|Canceled)$")).first
    try:
        status.wait_for(state="visible", timeout=RUN_TIMEOUT_MS)
    finally:
        _screenshot(page, "ui_run_render_and_check_dev.png")
    assert status.inner_text() == "Success", (
        f"run {run_id} ended {status.inner_text()}:\n{page.inner_text('body')[:3000]}\n{dagster_ui.log_tail()}"
    )
    # The step summary beside the Gantt chart: the asset step and its four check steps succeeded.
    page.get_by_text("Succeeded (5)", exact=True).wait_for(state="visible")
    page.get_by_text("Errored (0)", exact=True).wait_for(state="visible")
    page.get_by_text("RUN_SUCCESS", exact=True).first.wait_for(state="visible")
    _screenshot(page, "ui_run_render_and_check_dev.png")


def test_environment_status_after_the_run(page, dagster_ui: DagsterUI):
    # Runs after the render run above: the daemon's status_refresh_dev sensor (minimum interval 30 s)
    # materializes dev_status once that run has finished.
    deadline = time.monotonic() + STATUS_TIMEOUT_S
    table = page.locator("table", has_text="checks pass")
    while True:
        page.goto("/assets/dev_status", wait_until="domcontentloaded")
        with contextlib.suppress(Exception):
            table.first.wait_for(state="visible", timeout=5_000)
            break
        if time.monotonic() > deadline:
            _screenshot(page, "ui_status_dev.png")
            pytest.fail(
                f"dev_status not materialized within {STATUS_TIMEOUT_S}s; page text:\n"
                f"{page.inner_text('body')[:2000]}\ndagster dev log:\n{dagster_ui.log_tail()}"
            )
        page.wait_for_timeout(2_000)
    text = table.first.inner_text()
    _screenshot(page, "ui_status_dev.png")
    assert "never (no release recorded in this instance)" in text, text
    assert re.search(r"no: 4 of \d+ pass; never run: ", text), text
    assert "unknown (no migration recorded in this instance)" in text, text
    assert "none (no restore drill recorded)" in text, text
