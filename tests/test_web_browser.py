"""The web page in a real headless browser: Debian's chromium, driven by Selenium
through Debian's matching chromium-driver (nothing is downloaded).

The page is opened with a token, as from another machine, so the cookie
path that carries it to the stream and the scripts is exercised too.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path

import cv2
import pytest
from conftest import ROOT, demo_frame
from test_web import LABELS, LivePipeline, web_config

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
CHROMEDRIVER = shutil.which("chromedriver") or "/usr/bin/chromedriver"
SCREENSHOT_DIR = Path(os.environ.get("TEST_OUTPUT", ROOT / "build" / "test-output"))
TOKEN = "browser-test-token"

selenium = pytest.importorskip("selenium", reason="selenium is in the dev extra")
pytestmark = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()),
    reason="chromium and chromium-driver are not installed (apt install chromium chromium-driver)",
)

from selenium import webdriver  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

# The stream's current picture, read back through a canvas (same origin, so allowed).
PICTURE = """
const img = document.getElementById('stream');
if (!img.complete || !img.naturalWidth) return null;
const canvas = document.createElement('canvas');
canvas.width = img.naturalWidth; canvas.height = img.naturalHeight;
const context = canvas.getContext('2d');
context.drawImage(img, 0, 0);
const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
let sum = 0;
for (let i = 0; i < data.length; i += 97) sum = (sum * 31 + data[i]) % 1000000007;
return [canvas.width, canvas.height, sum];
"""


@pytest.fixture
def browser():
    os.environ.setdefault("SE_OFFLINE", "true")  # Selenium Manager must not fetch anything
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument("--window-size=1280,1500")
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    yield driver
    driver.quit()


# How many pixels of a canvas are coloured (not blank, not gray text).
COLOURED_PIXELS = """
const canvas = document.getElementById(arguments[0]);
const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
let n = 0;
for (let i = 0; i < data.length; i += 4) {
  const [r, g, b, a] = [data[i], data[i + 1], data[i + 2], data[i + 3]];
  if (a > 0 && (Math.abs(r - g) > 30 || Math.abs(g - b) > 30)) n++;
}
return n;
"""


DRAWS = "return Number(document.getElementById('{}').dataset.draws)"


def wait(driver, condition, timeout: float = 15, message: str = ""):
    return WebDriverWait(driver, timeout, poll_frequency=0.1).until(
        lambda d: condition(d) or None, message
    )


def test_page_streams_updates_and_analyses_a_photo(browser, tmp_path):
    photo = tmp_path / "two-faces.jpg"
    cv2.imwrite(str(photo), demo_frame(40))
    with LivePipeline(web_config(token=TOKEN)) as live:
        browser.get(f"{live.url}?token={TOKEN}")

        # The stream renders, at the camera's size, and the picture changes.
        first = wait(browser, lambda d: d.execute_script(PICTURE), message="stream never drew")
        assert first[:2] == [640, 480]
        wait(
            browser,
            lambda d: (p := d.execute_script(PICTURE)) and p[2] != first[2],
            message="stream picture never changed",
        )

        # The live panel fills in and keeps updating without a reload.
        wait(browser, lambda d: d.find_element(By.ID, "fps").text not in ("", "–"))
        assert "faces.mp4" in browser.find_element(By.ID, "running").text
        frames = browser.find_element(By.ID, "frames").text
        wait(browser, lambda d: d.find_element(By.ID, "frames").text != frames, timeout=5)
        assert browser.find_element(By.ID, "viewers").text == "1"
        labels = browser.find_elements(By.CSS_SELECTOR, "#labels tbody tr td:first-child")
        assert labels and {cell.text for cell in labels} <= LABELS

        # The charts draw, in colour, and keep drawing as the figures arrive.
        for chart in ("label-chart", "timeline"):
            wait(
                browser,
                lambda d, c=chart: d.execute_script(COLOURED_PIXELS, c) > 50,
                message=f"{chart} drew nothing",
            )
            draws = int(browser.find_element(By.ID, chart).get_attribute("data-draws"))
            wait(
                browser,
                lambda d, c=chart, n=draws: (
                    int(d.find_element(By.ID, c).get_attribute("data-draws")) > n
                ),
                timeout=5,
                message=f"{chart} did not update",
            )
        rows = browser.execute_script("return document.getElementById('timeline').height")
        assert rows >= 40  # a row per person seen in the last minute

        # A photo upload shows the annotated photo and one row per face.
        browser.find_element(By.ID, "file").send_keys(str(photo))
        browser.find_element(By.CSS_SELECTOR, "#upload button").click()
        rows = wait(
            browser,
            lambda d: d.find_elements(By.CSS_SELECTOR, "#photo-faces tbody tr"),
            message="no faces listed after the upload",
        )
        assert len(rows) == 2
        assert {row.find_elements(By.TAG_NAME, "td")[1].text for row in rows} <= LABELS
        wait(
            browser,
            lambda d: d.execute_script("return document.getElementById('photo').naturalWidth"),
        )
        assert "2 faces" in browser.find_element(By.ID, "photo-status").text

        # A file that is not a photo: the page says why, in one line.
        bad = tmp_path / "notes.txt"
        bad.write_text("not a photo")
        browser.find_element(By.ID, "file").send_keys(str(bad))
        browser.find_element(By.CSS_SELECTOR, "#upload button").click()
        status = wait(
            browser,
            lambda d: (
                (e := d.find_element(By.ID, "photo-status")).get_attribute("class") == "error" and e
            ),
            message="no error shown for a non-image upload",
        )
        assert "not a JPEG, PNG, BMP or WebP image" in status.text
        browser.find_element(By.ID, "file").send_keys(str(photo))
        browser.find_element(By.CSS_SELECTOR, "#upload button").click()
        wait(browser, lambda d: "2 faces" in d.find_element(By.ID, "photo-status").text)

        time.sleep(0.5)  # let the stream catch up for the picture
        SCREENSHOT_DIR.mkdir(parents=True, exist_ok=True)
        shot = SCREENSHOT_DIR / "web_page.png"
        browser.save_screenshot(str(shot))
        print(f"screenshot: {shot}")
        assert shot.stat().st_size > 10_000


def test_page_without_the_token_is_refused(browser):
    with LivePipeline(web_config(token=TOKEN)) as live:
        browser.get(live.url)
        body = browser.find_element(By.TAG_NAME, "body").text
        assert "token" in json.loads(body)["error"]
