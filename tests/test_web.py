"""The web app in headless Chromium: upload shared media, generate, play; bad uploads give clear messages."""

from __future__ import annotations

import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from helpers import serving

selenium = pytest.importorskip("selenium")
CHROMEDRIVER = shutil.which("chromedriver")
pytestmark = pytest.mark.skipif(CHROMEDRIVER is None, reason="needs chromium and chromium-driver (apt)")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    from talkinghead.web.app import create_app

    with serving(create_app(tmp_path_factory.mktemp("web"))) as port:
        yield f"http://127.0.0.1:{port}/"


def _chrome(*extra: str):  # type: ignore[no-untyped-def]
    """Headless Chromium that may play sound without a click, with ``extra`` command-line switches."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage",
                "--autoplay-policy=no-user-gesture-required", *extra):
        options.add_argument(arg)
    return webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    driver = _chrome()
    yield driver
    driver.quit()


def _submit(browser, url: str, face: Path, audio: Path):  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By

    browser.get(url)
    browser.find_element(By.ID, "face").send_keys(str(face))
    browser.find_element(By.ID, "audio").send_keys(str(audio))
    browser.find_element(By.ID, "go").click()


def _wait(browser, condition, timeout: float = 300.0):  # type: ignore[no-untyped-def]
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(browser, timeout, poll_frequency=0.5).until(condition)


def test_generate_and_play(server: str, browser, media: Path) -> None:  # type: ignore[no-untyped-def]
    speech = media / "speech" / "videoretalking_1.wav"  # 5.02 s
    _submit(browser, server, media / "faces" / "liveportrait_s0.jpg", speech)
    _wait(browser, lambda b: b.execute_script(
        "const v = document.getElementById('result'); return !v.hidden && v.readyState >= 1"
        " || document.getElementById('error').textContent"))
    assert browser.execute_script("return document.getElementById('error').textContent") == ""
    duration = browser.execute_script("return document.getElementById('result').duration")
    assert duration == pytest.approx(5.02, abs=0.1)
    assert browser.execute_script("return document.getElementById('stage').textContent") == "done"


@pytest.mark.parametrize(("face", "audio", "message"), [
    ("notes.txt", "speech", "notes.txt: "),
    ("noface", "speech", "no face"),
    ("photo", "empty.wav", "empty.wav: "),
])
def test_bad_uploads_are_explained_on_the_page(server: str, browser, media: Path, tmp_path: Path,  # type: ignore[no-untyped-def]
                                               face: str, audio: str, message: str) -> None:
    files = {"notes.txt": tmp_path / "notes.txt", "empty.wav": tmp_path / "empty.wav",
             "photo": media / "faces" / "liveportrait_s0.jpg", "speech": media / "speech" / "videoretalking_1.wav",
             "noface": tmp_path / "wall.png"}
    files["notes.txt"].write_text("not an image")
    files["empty.wav"].write_bytes(b"")
    import numpy as np
    from PIL import Image

    Image.fromarray(np.full((64, 64, 3), 128, np.uint8)).save(files["noface"])
    _submit(browser, server, files[face], files[audio])
    text = _wait(browser, lambda b: b.execute_script("return document.getElementById('error').textContent"),
                 timeout=120)
    assert message in text and "/tmp" not in text, text
    assert browser.execute_script("return document.getElementById('result').hidden")


def test_methods_and_their_options_come_from_the_registry(server: str, browser) -> None:  # type: ignore[no-untyped-def]
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    from talkinghead.registry import available_methods

    browser.get(server)
    _wait(browser, lambda b: len(Select(b.find_element(By.ID, "method")).options) == len(available_methods()), 30)
    method = Select(browser.find_element(By.ID, "method"))
    assert [o.get_attribute("value") for o in method.options] == list(available_methods())
    shown = "return !document.getElementById(arguments[0]).closest('label').hidden"
    method.select_by_value("styletalk")  # takes a style clip and its intensity, no expression scale
    assert browser.execute_script(shown, "style") and browser.execute_script(shown, "style_intensity")
    assert not browser.execute_script(shown, "expression_scale")
    method.select_by_value("viseme")
    assert not browser.execute_script(shown, "style") and browser.execute_script(shown, "expression_scale")


def _live_until_done(browser, timeout: float = 120.0) -> str:  # type: ignore[no-untyped-def]
    return _wait(browser, lambda b: b.execute_script(
        "const s = document.getElementById('stage').textContent;"
        " return s.startsWith('live: done') || document.getElementById('error').textContent ? s || 'error' : false"),
        timeout)


def test_live_mode_plays_the_speech_file_through_the_stream(  # type: ignore[no-untyped-def]
        server: str, browser, media: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    browser.get(server)
    browser.find_element(By.ID, "face").send_keys(str(media / "faces" / "liveportrait_s0.jpg"))
    browser.find_element(By.ID, "audio").send_keys(str(media / "speech" / "videoretalking_1.wav"))  # 5.02 s
    browser.find_element(By.ID, "live-file").click()
    _wait(browser, lambda b: b.execute_script("return document.getElementById('latency').textContent"), 60)
    browser.save_screenshot(str(tmp_path / "live.png"))
    stage = _live_until_done(browser)
    assert browser.execute_script("return document.getElementById('error').textContent") == ""
    frames = int(stage.split()[2])
    assert 124 <= frames <= 127  # 5.02 s at 25 fps
    ms = int(browser.execute_script("return document.getElementById('latency').textContent").split()[4])
    assert 0 < ms < 300


def test_live_mode_listens_to_the_microphone(server: str, media: Path, tmp_path: Path) -> None:
    from selenium.webdriver.common.by import By

    speech = tmp_path / "speech.wav"  # Chromium's fake microphone plays this file, over and over
    speech.write_bytes((media / "speech" / "videoretalking_1.wav").read_bytes())
    browser = _chrome("--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
                      f"--use-file-for-fake-audio-capture={speech}")
    try:
        browser.get(server)
        browser.find_element(By.ID, "face").send_keys(str(media / "faces" / "liveportrait_s0.jpg"))
        browser.find_element(By.ID, "live-mic").click()
        _wait(browser, lambda b: b.execute_script("return document.getElementById('latency').textContent"), 60)
        time.sleep(3)
        browser.find_element(By.ID, "live-stop").click()
        stage = _live_until_done(browser)
        assert browser.execute_script("return document.getElementById('error').textContent") == ""
        assert int(stage.split()[2]) >= 75  # at least the 3 s listened to
    finally:
        browser.quit()
