"""End-to-end tests of the web UI in headless Chromium (Playwright, Debian's ``chromium``).

The tests start the server themselves on 127.0.0.1 (a free port, in this process) and drive the
real page: upload a bundled example and upscale it, a batch of two files, a corrupt upload, the
Model Lab and Benchmark tabs. Each tab's screenshot is written to a temporary folder, or to
``docs/screenshots/`` (the README's images) when ``UPDATE_SCREENSHOTS=1`` is set.
Skipped, with the reason, only when Playwright, Gradio or a Chromium executable is missing
(``apt-get install chromium``; set ``CHROMIUM`` to use another executable).
"""

from __future__ import annotations

import io
import json
import os
import shutil
import socket
import time
import zipfile
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
DOC_SCREENSHOTS = ROOT / "docs" / "screenshots"
TIMEOUT_MS = 60_000
#: Gradio's queue calls pandas options that pandas 3 deprecates; not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::Warning:gradio.queueing")


def _chromium() -> str | None:
    return os.environ.get("CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")


def _missing() -> str | None:
    try:
        import gradio  # noqa: F401
        import playwright.sync_api  # noqa: F401
    except ImportError as exc:
        return f"the browser tests need gradio and playwright ({exc.name} is not installed)"
    if _chromium() is None:
        return "no Chromium executable found (apt-get install chromium, or set CHROMIUM)"
    return None


if (_reason := _missing()) is not None:
    print(f"skipping browser tests: {_reason}")
    pytest.skip(_reason, allow_module_level=True)

from playwright.sync_api import expect, sync_playwright  # noqa: E402

from audio_upscaler.ui.app import launch  # noqa: E402
from audio_upscaler.ui.settings import UISettings  # noqa: E402


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _harmonic_clip(path: Path, rate: int = 48_000, seconds: float = 1.0) -> None:
    """A full-band clean clip for the benchmark: a 220 Hz harmonic tone with a little noise."""
    t = np.arange(int(rate * seconds)) / rate
    x = sum(np.sin(2 * np.pi * 220 * k * t) / k for k in range(1, 100) if 220 * k < 0.45 * rate)
    x = x + 0.01 * np.random.default_rng(0).standard_normal(t.size)
    sf.write(path, (0.5 * x / np.abs(x).max()).astype(np.float32), rate)


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """A running UI: root ``data/`` holds a copy of one example, ``clean/`` a clean 48 kHz clip;
    a fake training run lies in ``runs/``."""
    base = tmp_path_factory.mktemp("ui")
    data = base / "data"
    data.mkdir()
    shutil.copy(EXAMPLES / "music_22k.flac", data)
    clean = base / "clean"
    clean.mkdir()
    _harmonic_clip(clean / "tone.flac")
    run = base / "runs" / "demo-run"
    run.mkdir(parents=True)
    (run / "config.yaml").write_text("model: {family: apnet}\n")
    (run / "log.jsonl").write_text("".join(
        json.dumps({"step": s, "kind": "train", "loss": 1.0 / (1 + s / 50)}) + "\n" for s in range(0, 501, 25)
    ) + "".join(json.dumps({"step": s, "kind": "validation", "lsd": 2.0 - s / 1000}) + "\n" for s in (100, 300, 500)))
    (run / "best.json").write_text(json.dumps({"step": 500, "lsd": 1.5}))
    settings = UISettings(roots=(data, clean), work_dir=base / "work", runs_dir=base / "runs",
                          config_dirs=(ROOT / "configs" / "train",), max_upload_mb=20)
    port = _free_port()
    demo = launch(settings, "127.0.0.1", port, block=False)
    yield {"url": f"http://127.0.0.1:{port}/", "data": data, "clean": clean, "base": base}
    demo.close()


@pytest.fixture(scope="module")
def browser():
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=_chromium(), args=["--no-sandbox"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    """A fresh browser context (its own Gradio session) on the UI."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    page.goto(server["url"], wait_until="domcontentloaded")
    page.wait_for_selector("#studio_file")
    yield page
    context.close()


def _choose(page, dropdown_id: str, option: str) -> None:
    page.click(f"#{dropdown_id} input")
    page.get_by_role("option", name=option, exact=True).click()


def _download(page, link_selector: str) -> bytes:
    href = page.locator(link_selector).first.get_attribute("href")
    response = page.request.get(href)
    assert response.ok, f"download of {href} failed: {response.status}"
    return response.body()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory) -> Path:
    """Where screenshots go: the README's folder only when asked to refresh it."""
    if os.environ.get("UPDATE_SCREENSHOTS") == "1":
        DOC_SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        return DOC_SCREENSHOTS
    return tmp_path_factory.mktemp("screenshots")


def _screenshot(page, folder: Path, name: str) -> None:
    path = folder / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    assert path.stat().st_size > 10_000, f"{name} screenshot is nearly empty"


def test_studio_upscales_an_example(page, screenshots):
    page.set_input_files("#studio_file input[type=file]", str(EXAMPLES / "speech_8k.wav"))
    expect(page.locator("#studio_analysis")).to_contain_text("8000 Hz")
    expect(page.locator("#studio_status")).to_contain_text("Ready")
    _choose(page, "studio_model", "auto")
    _choose(page, "studio_rate", "48000")
    page.click("#studio_run")
    status = page.locator("#studio_status")
    expect(status).to_contain_text("Done", timeout=TIMEOUT_MS)
    assert "model default" in status.inner_text()  # auto picks the shipped band-extension model

    info = sf.info(io.BytesIO(_download(page, "#studio_download a")))
    assert info.samplerate == 48_000
    assert abs(info.duration - sf.info(EXAMPLES / "speech_8k.wav").duration) < 0.01

    image = page.locator("#studio_spectrogram img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 300")
    players = page.locator("#studio_ab audio")
    expect(players).to_have_count(2)
    page.wait_for_function("[...document.querySelectorAll('#studio_ab audio')].every(a => a.readyState >= 1)")
    durations = players.evaluate_all("els => els.map(a => a.duration)")
    assert all(abs(d - info.duration) < 0.05 for d in durations)
    page.click("#studio_ab [data-ab-switch]")
    expect(page.locator("#studio_ab [data-ab-now]")).to_have_text("B: output")
    _screenshot(page, screenshots, "studio")


def _session_folder(page, server) -> Path:
    """The session folder behind this page's A/B players (from the input player's URL)."""
    src = page.locator("#studio_ab audio").first.get_attribute("src")
    work = server["base"] / "work"
    return work / Path(src.split("/work/", 1)[1]).parts[0]


def test_sessions_are_isolated_and_removed_when_closed(browser, server):
    pages = []
    for _ in range(2):
        context = browser.new_context()
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        page.goto(server["url"], wait_until="domcontentloaded")
        page.set_input_files("#studio_file input[type=file]", str(EXAMPLES / "music_mp3_128k.mp3"))
        expect(page.locator("#studio_status")).to_contain_text("Ready")
        page.click("#studio_run")
        expect(page.locator("#studio_status")).to_contain_text("Done")
        pages.append(page)
    first, second = (_session_folder(p, server) for p in pages)
    assert first != second and first.is_dir() and second.is_dir()
    pages[0].context.close()
    deadline = time.monotonic() + 20
    while first.exists() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not first.exists() and second.is_dir()
    pages[1].context.close()


def test_corrupt_upload_shows_an_error(page, tmp_path):
    corrupt = tmp_path / "broken.wav"
    corrupt.write_bytes(b"RIFF\x10\x00\x00\x00WAVEthis is not audio" * 20)
    page.set_input_files("#studio_file input[type=file]", str(corrupt))
    status = page.locator("#studio_status")
    expect(status).to_contain_text("Error")
    text = status.inner_text()
    assert "broken.wav" in text and ("not an audio file" in text or "corrupt" in text)
    assert "/tmp" not in text  # server paths are not shown
    expect(page.locator("#studio_analysis")).to_have_text("")


def test_batch_of_two_files(page, server, screenshots):
    page.get_by_role("tab", name="Batch").click()
    page.set_input_files("#batch_files input[type=file]", str(EXAMPLES / "speech_8k.wav"))
    _choose(page, "batch_root", str(server["data"].resolve()))
    page.fill("#batch_folder textarea, #batch_folder input", ".")
    _choose(page, "batch_model", "sbr")
    page.click("#batch_run")
    expect(page.locator("#batch_status")).to_contain_text("Finished: 2 of 2", timeout=TIMEOUT_MS)
    table = page.locator("#batch_table").inner_text()
    assert "speech_8k.wav" in table and "music_22k.flac" in table
    assert table.count("done") == 2

    archive = zipfile.ZipFile(io.BytesIO(_download(page, "#batch_zip a")))
    names = sorted(archive.namelist())
    assert names == ["music_22k_upscaled.flac", "speech_8k_upscaled.flac"]
    for name in names:
        assert sf.info(io.BytesIO(archive.read(name))).samplerate == 48_000
    _screenshot(page, screenshots, "batch")


def test_batch_refuses_a_folder_outside_the_root(page, server):
    page.get_by_role("tab", name="Batch").click()
    page.fill("#batch_folder textarea, #batch_folder input", "../../etc")
    page.click("#batch_run")
    expect(page.locator("#batch_status")).to_contain_text("outside the allowed folder")


def test_model_lab_lists_runs(page, screenshots):
    page.get_by_role("tab", name="Model Lab").click()
    page.get_by_role("tab", name="Runs and export").click()
    page.click("#lab_refresh")
    expect(page.locator("#lab_runs")).to_contain_text("demo-run")
    assert "1.500" in page.locator("#lab_runs").inner_text()
    image = page.locator("#lab_run_curves img")
    expect(image).to_be_visible()
    assert image.evaluate("img => img.complete && img.naturalWidth > 300")
    _screenshot(page, screenshots, "model_lab")


def test_benchmark_runs_and_shows_results(page, server, screenshots):
    page.get_by_role("tab", name="Benchmark").click()
    _choose(page, "bench_root", str(server["clean"].resolve()))
    page.fill("#bench_seconds input", "1")
    page.click("#bench_run")
    expect(page.locator("#bench_status")).to_contain_text("Done", timeout=TIMEOUT_MS)
    table = page.locator("#bench_table").inner_text()
    assert "bwe_8k_48k" in table and "sinc" in table and "sbr" in table
    expect(page.locator("#bench_gallery img").first).to_be_visible()
    _screenshot(page, screenshots, "benchmark")
