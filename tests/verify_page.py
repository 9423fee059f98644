#!/usr/bin/env python3
"""Drives the public verification page in headless Chromium (Selenium), as a citizen would.

Used by tests/serve.rs: `verify_page.py PAGE_URL FILE SHOT_DIR`. Opens PAGE_URL (a face's QR
address, `/v/<identifier>?d=<digest>`) at a phone's width, reads the status and the face check,
counts the page's scripts (there must be none), takes `verify-page.png`, then chooses FILE in the
page's form, submits it (a plain form post: the page has no JavaScript), reads the verdict and
takes `verify-result.png`. Prints what it saw as one JSON object; exits 1 on any failure.
"""

import json
import sys

from selenium import webdriver
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


def main():
    page_url, upload, shots = sys.argv[1], sys.argv[2], sys.argv[3]
    driver = browser()
    try:
        driver.set_page_load_timeout(60)
        driver.get(page_url)
        seen = {
            "title": driver.title,
            "status": driver.find_element(By.CSS_SELECTOR, "[role=status]").text,
            "face": driver.find_element(By.ID, "face").text,
            "scripts": len(driver.find_elements(By.TAG_NAME, "script")),
        }
        driver.save_screenshot(f"{shots}/verify-page.png")
        driver.find_element(By.ID, "file").send_keys(upload)
        driver.find_element(By.ID, "check").click()
        WebDriverWait(driver, 60).until(ready.presence_of_element_located((By.ID, "verdict")))
        seen["verdict"] = driver.find_element(By.ID, "verdict").text
        seen["signature"] = driver.find_element(By.ID, "signature").text
        seen["registry"] = driver.find_element(By.ID, "registry").text
        seen["result_url"] = driver.current_url
        driver.save_screenshot(f"{shots}/verify-result.png")
    finally:
        driver.quit()
    print(json.dumps(seen, ensure_ascii=False))


if __name__ == "__main__":
    main()
