"""The web page in a real headless browser: Debian's chromium, driven by Selenium
through Debian's matching chromium-driver (nothing is downloaded).

The page is opened with a token, as from another machine, so the cookie
path that carries it to the stream and the scripts is exercised too.
"""

from __future__ import annotations

import itertools
import json
import os
import re
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
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
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
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})  # CSP reports land here
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
        notice = browser.find_element(By.ID, "notice")  # [privacy] notice, on by default
        assert notice.is_displayed() and notice.text == "Emotion recognition in use"
        frames = browser.find_element(By.ID, "frames").text
        wait(browser, lambda d: d.find_element(By.ID, "frames").text != frames, timeout=5)
        assert browser.find_element(By.ID, "viewers").text == "1"

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
        rows = browser.execute_script("return document.getElementById('timeline').clientHeight")
        assert rows >= 40  # a strip per person seen in the last minute

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
        heading = browser.find_element(By.TAG_NAME, "h1").text
        assert heading == "This page needs its token"  # a page, not JSON
        assert "/?token=TOKEN" in browser.find_element(By.TAG_NAME, "body").text


def csp_violations(driver) -> list[str]:
    return [
        entry["message"]
        for entry in driver.get_log("browser")
        if "Content Security Policy" in entry["message"] or "Refused to" in entry["message"]
    ]


# Another site's page: a plain form (text/plain, the one content type a form
# can give JSON-looking text) and a fetch, both aimed at the device's page.
ATTACK = """<!doctype html><html><body>
<form id="f" method="POST" action="{target}api/pause" enctype="text/plain">
<input name='{{"paused": true, "x": "' value='"}}'></form>
<script>
fetch("{target}api/pause", {{method: "POST", mode: "no-cors", credentials: "include",
  headers: {{"Content-Type": "text/plain"}}, body: JSON.stringify({{paused: true}})}})
  .finally(() => document.getElementById("f").submit());
</script></body></html>"""


def test_a_page_on_another_site_cannot_pause_the_device(browser, caplog):
    import http.server
    import threading
    import urllib.request

    with LivePipeline(web_config()) as live:
        page = ATTACK.format(target=live.url).encode()

        class Attacker(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                self.send_response(200)
                self.send_header("Content-Type", "text/html")
                self.end_headers()
                self.wfile.write(page)

            def log_message(self, *args):
                pass

        site = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Attacker)
        threading.Thread(target=site.serve_forever, daemon=True).start()
        try:
            # localhost vs 127.0.0.1: another site, as a page on the internet would be
            browser.get(f"http://localhost:{site.server_port}/")
            wait(
                browser,
                lambda d: "refused /api/pause from another site" in caplog.text,
                message="the attacking page sent nothing the server saw",
            )
        finally:
            site.shutdown()
        with urllib.request.urlopen(live.url + "api/stats") as response:
            assert json.loads(response.read())["paused"] is False


def test_pause_is_unmistakable_and_a_failed_one_is_shown(browser):
    with LivePipeline(web_config(token=TOKEN)) as live:
        browser.get(f"{live.url}?token={TOKEN}")
        assert "token" not in browser.current_url  # moved into the cookie
        wait(browser, lambda d: d.find_element(By.ID, "fps").text not in ("", "–"))
        browser.find_element(By.ID, "pause").click()
        banner = wait(
            browser, lambda d: (b := d.find_element(By.ID, "paused")).is_displayed() and b
        )
        assert "paused" in banner.text
        frames = browser.find_element(By.ID, "frames").text
        time.sleep(2.5)  # two stats updates: the figures stay as they were
        assert browser.find_element(By.ID, "frames").text == frames
        assert "paused" in browser.find_element(By.ID, "updated").text
        browser.delete_all_cookies()  # the token gone: the next request is refused
        browser.find_element(By.ID, "pause").click()
        problem = wait(
            browser, lambda d: (e := d.find_element(By.ID, "pause-error")).is_displayed() and e
        )
        assert "not resumed" in problem.text and "token" in problem.text
        assert browser.find_element(By.ID, "paused").is_displayed()  # still paused, and says so
        assert csp_violations(browser) == []


# Every element that shows text: its colour against the first opaque background
# behind it, as WCAG 2 computes contrast (AA: 4.5 for text).
CONTRAST = """
function lum(rgb) {
  const [r, g, b] = rgb.match(/[\\d.]+/g).slice(0, 3).map(Number).map((v) => {
    v /= 255;
    return v <= 0.03928 ? v / 12.92 : Math.pow((v + 0.055) / 1.055, 2.4);
  });
  return 0.2126 * r + 0.7152 * g + 0.0722 * b;
}
function background(el) {
  for (; el; el = el.parentElement) {
    const c = getComputedStyle(el).backgroundColor;
    if (c && !c.startsWith('rgba(0, 0, 0, 0)') && c !== 'transparent') return c;
  }
  return 'rgb(255, 255, 255)';
}
const worst = [];
for (const el of document.querySelectorAll('body *')) {
  if (!el.offsetParent) continue;
  const own = [...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim());
  if (!own) continue;
  const [a, b] = [lum(getComputedStyle(el).color), lum(background(el))];
  const ratio = (Math.max(a, b) + 0.05) / (Math.min(a, b) + 0.05);
  if (ratio < 4.5) worst.push([el.tagName, el.id, el.textContent.trim().slice(0, 30), ratio]);
}
return worst;
"""

# What a person would see wrong: a page wider than the screen, a broken image,
# an absolute folder path, a control without a label.
LAYOUT = """
const broken = [...document.images].filter(
  (img) => img.offsetParent && !(img.complete && img.naturalWidth > 0)
).map((img) => img.id || img.alt);
const unlabelled = [...document.querySelectorAll('input, select, textarea')].filter(
  (el) => !(el.labels && el.labels.length) && !el.getAttribute('aria-label')
).map((el) => el.id);
return {
  overflow: document.documentElement.scrollWidth - window.innerWidth,
  broken: broken,
  unlabelled: unlabelled,
  text: document.body.innerText,
};
"""


@pytest.mark.parametrize(
    ("name", "width", "height"), [("phone", 390, 844), ("desktop", 1280, 1000)]
)
def test_the_page_fits_a_phone_and_a_desktop(browser, name, width, height):
    with LivePipeline(web_config(token=TOKEN)) as live:
        browser.set_window_size(width, height)
        browser.get(f"{live.url}?token={TOKEN}")
        width_inside = browser.execute_script("return window.innerWidth")
        wait(browser, lambda d: d.execute_script(PICTURE), message="stream never drew")
        for chart in ("label-chart", "timeline"):
            wait(browser, lambda d, c=chart: d.execute_script(COLOURED_PIXELS, c) > 50)
            draws = int(browser.find_element(By.ID, chart).get_attribute("data-draws"))
            wait(
                browser,
                lambda d, c=chart, n=draws: (
                    int(d.find_element(By.ID, c).get_attribute("data-draws")) > n
                ),
                message=f"{chart} did not change over time",
            )
        page = browser.execute_script(LAYOUT)
        assert page["overflow"] <= 0, f"{page['overflow']} px wider than {width_inside} px"
        assert page["broken"] == [], page["broken"]  # nothing before a photo is uploaded
        assert page["unlabelled"] == []
        assert str(ROOT) not in page["text"] and not re.search(r"(^|\s)/\w+/\w+", page["text"])
        assert "video faces.mp4" in page["text"]  # the source's kind and name
        assert "far faces" in page["text"]  # the detector as it runs
        assert browser.execute_script(CONTRAST) == []
        # the keyboard reaches the photo form
        focused = []
        for _ in range(4):
            ActionChains(browser).send_keys(Keys.TAB).perform()
            focused.append(browser.execute_script("return document.activeElement.id"))
        assert "file" in focused, focused
        assert "token" not in browser.current_url
        # the header is two rows at most, even on a phone (it was three)
        rows = browser.execute_script(
            "return [...document.querySelectorAll('header > *')].filter((e) => e.offsetParent)"
            ".map((e) => [e.id || e.tagName, e.getBoundingClientRect().top])"
        )
        tops = sorted(top for _, top in rows)
        rows_seen = 1 + sum(b - a > 10 for a, b in itertools.pairwise(tops))  # baselines differ
        assert rows_seen <= 2, rows
        browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        time.sleep(0.5)
        # WEB_SCREENSHOTS=docs (make web-screenshots): the README's pictures
        folder = ROOT / "docs" if os.environ.get("WEB_SCREENSHOTS") == "docs" else SCREENSHOT_DIR
        folder.mkdir(parents=True, exist_ok=True)
        stem = "web" if name == "desktop" else "web-phone"
        shot = folder / f"{stem}.png"
        browser.save_screenshot(str(shot))
        assert shot.stat().st_size > 10_000
        # and paused, as a person would see it
        browser.find_element(By.ID, "pause").click()
        wait(browser, lambda d: d.find_element(By.ID, "paused").is_displayed())
        browser.execute_script("document.activeElement.blur(); window.scrollTo(0, 0)")
        time.sleep(1.5)
        browser.save_screenshot(str(folder / f"{stem}-paused.png"))
        assert csp_violations(browser) == []
