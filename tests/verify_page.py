#!/usr/bin/env python3
"""Drives the public verification page in headless Chromium (Selenium), as a citizen would.

Used by tests/serve.rs: `verify_page.py PLAN.json SHOT_DIR`. The plan is
`{"pages": [{"url", "shot"}], "uploads": [{"url", "file", "shot"}]}`. Each page is opened at a
phone's width: its status text, the face check (when the address carries `d`) and the number of
scripts on it (there must be none) are read, and a screenshot is taken when `shot` is given.
Each upload opens its page, chooses `file` in the page's form, submits it (a plain form post:
the page has no JavaScript) and reads the verdict. Prints what it saw as one JSON object
`{"pages": [...], "uploads": [...]}`; exits 1 on any failure.
"""

import json
import sys

from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ready
from selenium.webdriver.support.ui import WebDriverWait


def browser():
    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                 "--window-size=420,1000", "--lang=zh-CN"):
        options.add_argument(flag)
    return webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)


def text_of(driver, element_id):
    try:
        return driver.find_element(By.ID, element_id).text
    except NoSuchElementException:
        return None


def main():
    with open(sys.argv[1], encoding="utf-8") as f:
        plan = json.load(f)
    shots = sys.argv[2]
    seen = {"pages": [], "uploads": []}
    driver = browser()
    try:
        driver.set_page_load_timeout(60)
        for page in plan["pages"]:
            driver.get(page["url"])
            seen["pages"].append({
                "title": driver.title,
                "status": driver.find_element(By.CSS_SELECTOR, "[role=status]").text,
                "face": text_of(driver, "face"),
                "scripts": len(driver.find_elements(By.TAG_NAME, "script")),
                "form": len(driver.find_elements(By.CSS_SELECTOR, "form input[type=file]")),
            })
            if page.get("shot"):
                driver.save_screenshot(f"{shots}/{page['shot']}")
        for upload in plan["uploads"]:
            driver.get(upload["url"])
            driver.find_element(By.ID, "file").send_keys(upload["file"])
            driver.find_element(By.ID, "check").click()
            WebDriverWait(driver, 60).until(ready.presence_of_element_located((By.ID, "verdict")))
            seen["uploads"].append({
                "verdict": text_of(driver, "verdict"),
                "signature": text_of(driver, "signature"),
                "registry": text_of(driver, "registry"),
                "url": driver.current_url,
            })
            if upload.get("shot"):
                driver.save_screenshot(f"{shots}/{upload['shot']}")
    finally:
        driver.quit()
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main()
