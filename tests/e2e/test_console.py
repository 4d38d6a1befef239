"""The operator console and the test page in a real headless Chromium, against a real router.

One browser for the module (Debian's chromium and chromedriver, named explicitly: nothing is
downloaded). The console follows a real rollout and acts through the admin API; the test page
streams real answers from the tiny engines and pins a colour with the admin token.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from selenium import webdriver
from selenium.webdriver.chrome.options import Options
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.support.ui import Select, WebDriverWait
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response

from router.weights import Colour
from testkit.traffic import LoadDriver
from tests.e2e.helpers import ADMIN_TOKEN, AUTH, FAST, admin_status, events, wait_until
from tests.e2e.http_upstream import HttpUpstream

REPO = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO / "runs" / "screenshots"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
WAIT_S = 20
# Markup a backend's text could carry into an event: it must show as text and never run.
MARKUP = '<script>window.injected = 1</script><img src="x" onerror="window.injected = 2">'


@pytest.fixture(scope="module")
def browser() -> Iterator[WebDriver]:
    assert CHROMIUM.exists() and CHROMEDRIVER.exists(), "install chromium and chromium-driver (make setup does)"
    options = Options()
    options.binary_location = str(CHROMIUM)
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu", "--window-size=1200,800",
                 "--no-first-run", "--disable-extensions", "--disable-background-networking"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    driver.set_page_load_timeout(WAIT_S)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    try:
        yield driver
    finally:
        driver.quit()


def viewport(driver: WebDriver, width: int, height: int, mobile: bool = False) -> None:
    driver.execute_cdp_cmd("Emulation.setDeviceMetricsOverride",
                           {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": mobile})


def console_errors(driver: WebDriver) -> list[str]:
    """What the page logged as errors since the last call (failed loads, exceptions, CSP refusals)."""
    return [entry["message"] for entry in driver.get_log("browser") if entry["level"] == "SEVERE"]


def open_page(driver: WebDriver, url: str) -> None:
    """Leaves the last test's page (its router is gone) and forgets what it logged, then opens `url`."""
    driver.get("about:blank")
    console_errors(driver)
    driver.get(url)


def text(driver: WebDriver, selector: str) -> str:
    return str(driver.execute_script("return document.querySelector(arguments[0])?.textContent ?? ''", selector))


def wait_text(driver: WebDriver, selector: str, pattern: str) -> str:
    """Waits until the element's text matches `pattern` (a regular expression); returns the text."""
    WebDriverWait(driver, WAIT_S, poll_frequency=0.05).until(
        lambda d: re.search(pattern, text(d, selector)) is not None,
        message=f"{selector} never matched {pattern!r}")
    return text(driver, selector)


def fill(driver: WebDriver, element_id: str, value: str) -> None:
    field = driver.find_element(By.ID, element_id)
    field.clear()
    field.send_keys(value)


def use_token(driver: WebDriver, token: str) -> None:
    fill(driver, "token-input", token)
    driver.find_element(By.CSS_SELECTOR, "#token-form button[type=submit]").click()


def watch(driver: WebDriver, until: str, timeout_s: float = 40.0, screenshot: Path | None = None,
          shoot_at_step: int = 2) -> tuple[list[str], list[str]]:
    """The phases and weights the page shows, read every 50 ms (no reload) until the phase is `until`."""
    phases: list[str] = []
    weights: list[str] = []
    deadline = time.monotonic() + timeout_s
    while not phases or phases[-1] != until:
        assert time.monotonic() < deadline, f"the page showed {phases} and {weights}, never {until}"
        phase, shown, step = driver.execute_script(
            "return ['#phase', '#weights-text', '#step'].map(s => document.querySelector(s).textContent)")
        if not phases or phases[-1] != phase:
            phases.append(phase)
        if not weights or weights[-1] != shown:
            weights.append(shown)
        if screenshot is not None and step.startswith(f"step {shoot_at_step}/"):
            time.sleep(1.5)  # the charts and the event log fill a little more
            driver.save_screenshot(str(screenshot))
            screenshot = None
        time.sleep(0.05)
    return phases, weights


class MarkupReady(HttpUpstream):
    """A backend whose failing `/ready` answers with markup, which the router passes into an event."""

    async def _ready(self, request: Request) -> Response:
        if self.behaviour.ready_status == 200:
            return JSONResponse({"ready": True})
        return PlainTextResponse(MARKUP, status_code=self.behaviour.ready_status)


@pytest.fixture
def console_router(start_router, upstreams, tmp_path: Path):
    # The shadow phase on (the test servers answer a short Russian line, alike for both colours).
    env = {**FAST, "BLUEGREEN_ANALYTICS__PATH": str(tmp_path / "analytics.jsonl"),
           "BLUEGREEN_ROLLOUT__SHADOW__ENABLED": "true", "BLUEGREEN_ROLLOUT__SHADOW__MIN_PAIRS": "5"}
    return start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url, env=env)


def test_console_follows_a_rollout_and_acts_only_with_the_token(browser: WebDriver, console_router) -> None:
    url = console_router.url
    viewport(browser, 1200, 800)
    open_page(browser, f"{url}/console")
    assert "enter the admin token" in wait_text(browser, "#mode", "read-only")
    wait_text(browser, "#ready", "^ready$")  # readiness is open to all
    assert text(browser, "#phase") == "–"  # the status needs the token: not even asked for without it
    use_token(browser, ADMIN_TOKEN)
    wait_text(browser, "#phase", "^idle$")
    assert text(browser, "#weights-text") == "blue 100 % · green 0 %"
    assert browser.execute_script("return sessionStorage.getItem('bluegreen-admin-token')") == ADMIN_TOKEN
    assert ADMIN_TOKEN not in browser.current_url and not browser.get_cookies()

    with LoadDriver(url) as load:
        fill(browser, "start-steps", "10,30,60,100")
        fill(browser, "start-interval", "4")  # each step on screen for ~4 s: several 1 s polls, even slow ones
        browser.find_element(By.ID, "start").click()
        phases, weights = watch(browser, "promoted", timeout_s=90, screenshot=SCREENSHOTS / "console.png",
                                shoot_at_step=3)
    assert "progressing" in phases and phases[-1] == "promoted", phases
    shown = [w for w in weights if w != "–"]
    assert shown[0] == "blue 100 % · green 0 %" and shown[-1] == "blue 0 % · green 100 %", shown
    assert {"blue 90 % · green 10 %", "blue 40 % · green 60 %"} <= set(shown), shown  # each step on screen
    assert load.failures == []
    assert text(browser, "#verdict") == "passed"
    wait_text(browser, "#events", "promoted")
    assert "mirrored pairs" in text(browser, "#shadow-summary") and text(browser, "#shadow-canary") == "green"
    assert console_errors(browser) == []  # the whole rollout, drawn live, without one error

    # Roll back, with the token: a new rollout (blue is the canary now: the shadow figures say so)
    # stopped at its first step.
    with LoadDriver(url) as more_load:
        fill(browser, "start-steps", "50,100")
        fill(browser, "start-interval", "60")
        browser.find_element(By.ID, "start").click()
        wait_text(browser, "#phase", "^progressing$")
        assert text(browser, "#shadow-canary") == "blue" and "failed on blue" in text(browser, "#shadow-summary")
        browser.find_element(By.CSS_SELECTOR, "[data-action=rollback]").click()
        wait_text(browser, "#phase", "^rolled_back$")
    assert more_load.failures == []
    assert "rollback: done" in text(browser, "#action-result")
    wait_text(browser, "#weights-text", "^blue 0 % · green 100 %$")
    assert admin_status(url)["weights"]["green"] == 100

    # Every question of the load, under its category, from the router's analytics (read every 10 s).
    rows = "return [...document.querySelectorAll('#analytics tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
    WebDriverWait(browser, 25, poll_frequency=0.2).until(
        lambda d: ["contracts", str(load.answered + more_load.answered)] in [row[:2] for row in d.execute_script(rows)],
        message=f"the analytics panel never counted the load's {load.answered + more_load.answered} requests")

    # Without the token the page says it is read-only, and the API's refusal is shown as it is.
    browser.find_element(By.ID, "token-forget").click()
    assert "read-only" in wait_text(browser, "#mode", "read-only")
    fill(browser, "weights-green", "30")
    browser.find_element(By.ID, "set-weights").click()
    refusal = wait_text(browser, "#action-result", "refused")
    assert refusal.startswith("set weights refused: missing bearer token"), refusal
    assert admin_status(url)["weights"]["green"] == 100  # nothing changed
    assert all("401" in message for message in console_errors(browser))  # only the refused call itself


def test_backend_text_in_an_event_is_shown_as_text(browser: WebDriver, start_router, upstreams) -> None:
    green = MarkupReady("green").start()
    try:
        router = start_router(upstreams[Colour.blue].url, green.url, env=FAST)
        viewport(browser, 1200, 800)
        open_page(browser, f"{router.url}/console")
        use_token(browser, ADMIN_TOKEN)
        wait_text(browser, "#phase", "^idle$")
        green.behaviour.ready_status = 503
        wait_until(lambda: any(e["kind"] == "backend_unready" for e in events(router.url)))
        shown = wait_text(browser, "#events [data-kind=backend_unready] .message", "answered 503")
        assert shown == f"green is not ready: /ready answered 503: {MARKUP}; its traffic goes to blue"
        reason = wait_text(browser, "#ready-colours", "green: not ready")
        assert MARKUP in reason  # the readiness panel shows the same text, as text
        assert browser.execute_script("return document.querySelectorAll('main script, main img').length") == 0
        assert browser.execute_script("return window.injected") is None
        assert console_errors(browser) == []
    finally:
        green.stop()


@pytest.fixture
def engine_router(start_router, llama_backend, hf_backend):
    """Blue on llama.cpp (GGUF), green on transformers: both tiny real models."""
    return start_router(llama_backend.url, hf_backend.url)


def ask(driver: WebDriver, question: str) -> None:
    fill(driver, "question", question)
    driver.find_element(By.ID, "ask").click()


def test_try_page_streams_an_answer_and_pins_a_colour_with_the_token(browser: WebDriver, engine_router) -> None:
    url = engine_router.url
    viewport(browser, 390, 844, mobile=True)
    open_page(browser, f"{url}/try")
    assert browser.execute_script("return document.documentElement.scrollWidth") <= 390  # fits a phone's width
    Select(browser.find_element(By.ID, "prompt-type")).select_by_value("short")
    ask(browser, "Что такое договор аренды?")
    wait_text(browser, "#response-time", r"^\d+ ms$|^\d+\.\d s$")
    answer = text(browser, "#answer")
    assert answer.strip() and text(browser, "#colour") == "blue"  # green's weight is 0
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", text(browser, "#ttft"))
    assert text(browser, "#answer-length") == f"{len(answer)} символов"
    assert re.fullmatch(r"\d+ в вопросе · \d+ в ответе", text(browser, "#tokens"))
    assert console_errors(browser) == []

    ask(browser, "   ")  # blank: the API's own 422 message is shown
    assert wait_text(browser, "#error", "422").startswith("422: question: ")
    assert all("422" in message for message in console_errors(browser))  # only the refused call itself

    assert browser.find_element(By.ID, "pin").get_attribute("disabled") is not None  # no token, no pin
    browser.find_element(By.CSS_SELECTOR, "#qa summary").click()
    use_token(browser, ADMIN_TOKEN)
    Select(browser.find_element(By.ID, "pin")).select_by_value("green")
    # Count the answer's updates on screen.
    browser.execute_script("""
        window.updates = 0;
        new MutationObserver(records => window.updates += records.length).observe(document.getElementById('answer'),
                                                              {childList: true, characterData: true, subtree: true});
    """)
    Select(browser.find_element(By.ID, "prompt-type")).select_by_value("detailed")
    ask(browser, "Как расторгнуть трудовой договор?")
    wait_text(browser, "#response-time", r"\d")
    assert text(browser, "#colour") == "green" and text(browser, "#answer").strip()
    # Shown as it arrived, from the event stream (#ttft is set by the first delta event). How many pieces a
    # tiny model's short answer comes in depends on the machine's speed, so only "at least one" is certain.
    assert browser.execute_script("return window.updates") >= 1
    assert re.fullmatch(r"\d+ ms|\d+\.\d s", text(browser, "#ttft"))
    browser.execute_script("window.scrollTo(0, 0)")
    browser.save_screenshot(str(SCREENSHOTS / "try.png"))
    assert console_errors(browser) == []


def test_pin_header_is_honoured_only_with_the_admin_token(start_router, upstreams) -> None:
    router = start_router(upstreams[Colour.blue].url, upstreams[Colour.green].url)
    ask_url = f"{router.url}/api/v1/chat/legal"
    question = {"question": "Что такое договор?"}

    def post(**headers: str) -> httpx.Response:
        return httpx.post(ask_url, json=question, headers={"X-Session-ID": "qa", **headers}, timeout=10)

    assert post().headers["x-backend"] == "blue"  # green's weight is 0
    pinned = post(**{"X-Bluegreen-Pin": "green"}, **AUTH)
    assert pinned.status_code == 200 and pinned.headers["x-backend"] == "green"
    seen = upstreams[Colour.green].seen.last_headers
    assert "authorization" not in seen and "x-bluegreen-pin" not in seen  # the admin token stays in the router
    for headers, status, words in [
        ({"X-Bluegreen-Pin": "green"}, 401, "needs 'Authorization: Bearer"),
        ({"X-Bluegreen-Pin": "green", "Authorization": "Bearer wrong"}, 403, "not the router's admin token"),
        ({"X-Bluegreen-Pin": "purple", **AUTH}, 400, "must be 'blue' or 'green'"),
    ]:
        refused = post(**headers)
        assert refused.status_code == status and words in refused.json()["error"]["message"], refused.text
        assert (refused.headers.get("www-authenticate") == "Bearer") is (status == 401)
    assert upstreams[Colour.green].seen.requests == 1  # only the pinned request reached green
