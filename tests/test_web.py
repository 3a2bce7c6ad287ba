"""The web app in headless Chromium: upload shared media, generate, play; bad uploads give clear messages."""

from __future__ import annotations

import shutil
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


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--autoplay-policy=no-user-gesture-required"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
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
