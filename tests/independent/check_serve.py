#!/usr/bin/env python3
"""Independent checks of `etl serve`: its OpenAPI document against the server, by
schemathesis, and its console in a real browser (Debian's Chromium, driven by Playwright).

Usage: python tests/independent/check_serve.py path/to/etl

The example job (two weeks, and a third run whose check fails, so the console has a failure to
mark) and the example pipeline run in a copy of sql/ and data/ under a temporary folder with a
temporary ETL_HOME; a key for every table is created; the server starts on a free port (ready
when it prints its "listening on" line). Then:

  1. schemathesis runs every check it has (but `positive_data_acceptance`: a well-formed
     `where=col:eq:x` naming no column is rightly a 400) on every operation of
     /v1/openapi.json: no 5xx, every status, header, content type and body as documented;
  2. Chromium signs in through the login form and loads every page (runs, bill, tables, a
     table, pipelines, a failed and a succeeded run), asserting its key elements and that the
     browser logged no error; a screenshot of each page is kept in target/serve-console/;
  3. the first Tab lands on the skip link, every chart is an image with a title and a
     description, every form field has a label;
  4. SIGTERM stops the server with exit status 0.
"""
import os
import shutil
import signal
import subprocess
import sys
import tempfile

from playwright.sync_api import expect, sync_playwright

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
SCREENSHOTS = os.path.join(REPO, "target", "serve-console")
VENV_BIN = os.path.dirname(os.path.abspath(sys.executable))


def check(condition, message):
    if not condition:
        print(f"FAILED: {message}", file=sys.stderr)
        sys.exit(1)
    print(f"ok: {message}")


def etl(binary, work, home, *args, expect=0):
    env = {**os.environ, "ETL_HOME": home, "ETL_CATALOG": "local"}
    result = subprocess.run([binary, *args], cwd=work, env=env, capture_output=True, text=True, timeout=600)
    check(result.returncode == expect, f"etl {' '.join(args)} exits {expect} (got {result.returncode}: {result.stderr[-500:]})")
    return result.stdout


def prepare(binary, work, home):
    for folder in ("sql", "data"):
        shutil.copytree(os.path.join(REPO, folder), os.path.join(work, folder))
    for date in ("2026-11-23", "2026-11-30"):
        etl(binary, work, home, "run", "sql/weekly_orders.toml", "--logical-date", date, "-q")
    with open(os.path.join(work, "sql", "weekly_orders.toml")) as f:
        job = f.read()
    failing = job.replace('name = "weekly_orders"', 'name = "weekly_orders_checked"') + (
        '\n[[target.check]]\nname = "at most one row"\nrow_count = { max = 1 }\n'
    )
    with open(os.path.join(work, "sql", "weekly_orders_checked.toml"), "w") as f:
        f.write(failing)
    etl(binary, work, home, "run", "sql/weekly_orders_checked.toml", "--logical-date", "2026-11-30", "-q", expect=1)
    etl(binary, work, home, "pipeline", "run", "sql/pipeline_example", "--logical-date", "2026-11-02", "-q")
    return etl(binary, work, home, "serve", "keys", "create", "--name", "console", "--tables", "*", "-q").strip()


def start(binary, work, home):
    env = {**os.environ, "ETL_HOME": home, "ETL_CATALOG": "local"}
    server = subprocess.Popen(
        [binary, "serve", "--bind", "127.0.0.1:0", "--pipelines", "sql/pipeline_example"],
        cwd=work, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
    )
    for line in server.stderr:
        if "listening on " in line:
            url = line.split("listening on ", 1)[1].strip()
            break
    else:
        check(False, "etl serve starts listening")
    # The access log goes on; read it so that the pipe never fills.
    log = []
    import threading
    threading.Thread(target=lambda: log.extend(server.stderr), daemon=True).start()
    return server, url, log


def schemathesis(url, key):
    result = subprocess.run(
        [
            os.path.join(VENV_BIN, "schemathesis"), "run", f"{url}/v1/openapi.json",
            "--header", f"Authorization: Bearer {key}",
            "--checks", "all", "--exclude-checks", "positive_data_acceptance",
            "--max-examples", "40", "--seed", "20261205", "--workers", "1",
            "--request-timeout", "60",
        ],
        # Its own state folder (.schemathesis/) goes to a temporary folder, not the repository.
        cwd=tempfile.gettempdir(),
        capture_output=True, text=True, timeout=1200,
    )
    summary = result.stdout[-3000:]
    check(result.returncode == 0, f"schemathesis finds no 5xx and no response outside the document\n{summary}")


def console(url, key):
    os.makedirs(SCREENSHOTS, exist_ok=True)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    check(chromium is not None, "Chromium is installed (scripts/test installs Debian's chromium)")
    errors = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        page = browser.new_page(viewport={"width": 1200, "height": 900})
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.on("pageerror", lambda error: errors.append(str(error)))

        def heading(text, what):
            # Clicks start navigations that may not have finished: wait for the new page.
            expect(page.locator("h1")).to_have_text(text)
            check(True, what)

        def shot(name):
            page.screenshot(path=os.path.join(SCREENSHOTS, f"{name}.png"), full_page=True)

        page.goto(f"{url}/")
        check(page.url.endswith("/login"), "an unsigned visitor is sent to the login form")
        check(page.get_by_label("API key").count() == 1, "the key field has a label")
        page.get_by_label("API key").fill("etl_not_a_key")
        page.get_by_role("button", name="Sign in").click()
        check(page.get_by_role("alert").count() == 1, "a wrong key is refused, said in an alert")
        shot("login")
        page.get_by_label("API key").fill(key)
        page.get_by_role("button", name="Sign in").click()
        page.wait_for_url(f"{url}/")
        # The refused key's page came with status 401, which Chromium logs as an error: the
        # pages after signing in must log none.
        errors.clear()
        cookies = page.context.cookies()
        check(any(c["name"] == "etl_key" and c["httpOnly"] for c in cookies), "the session cookie is HTTP-only")

        heading("Runs", "the runs page")
        rows = page.locator("table#runs tbody tr")
        check(rows.count() >= 7, f"every run is listed ({rows.count()})")
        check(page.locator("table#runs tr.failed").count() == 1, "the failed run is marked in the table")
        check(page.locator("svg#duration .bar.failed").count() == 1, "and in the duration chart")
        for chart in ("duration", "rows", "bytes", "athena"):
            svg = page.locator(f"svg#{chart}")
            check(svg.get_attribute("role") == "img", f"the {chart} chart is an image")
            labelled = svg.get_attribute("aria-labelledby").split()
            check(all(page.locator(f"#{i}").count() == 1 for i in labelled), f"the {chart} chart has a title and description")
        shot("runs")
        page.keyboard.press("Tab")
        check(page.evaluate("document.activeElement.textContent") == "Skip to content", "the first Tab reaches the skip link")

        page.get_by_role("link", name="Bill").click()
        heading("Bill", "the bill page")
        months = page.locator("table#bill tbody tr th").all_inner_texts()
        check(len(months) >= 2 and all(len(m) == 7 for m in months), f"the bill per job and month ({months})")
        shot("bill")

        page.get_by_role("link", name="Tables", exact=True).click()
        heading("Tables", "the tables page")
        check(page.locator("table#tables tbody tr").count() >= 4, "the tables page lists the tables")
        shot("tables")
        page.get_by_role("link", name="curated.weekly_revenue").click()
        heading("curated.weekly_revenue", "a table's page")
        check(page.locator("table#data-versions tbody tr").count() == 2, "its two data versions")
        check(page.locator("table#partitions tbody tr").count() >= 5, "its partitions")
        check(page.locator("ol#schema-versions li").count() >= 1, "its schema versions")
        shot("table")

        page.get_by_role("link", name="Pipelines").click()
        heading("Pipelines", "the pipelines page")
        nodes = page.locator("svg.graph .node")
        check(nodes.count() == 4, "the pipeline's graph has its four jobs")
        check(page.locator("svg.graph .node.succeeded").count() == 4, "each coloured by its last run")
        check(page.locator("svg.graph line.edge").count() == 3, "and its three edges")
        shot("pipelines")

        page.get_by_role("link", name="Runs", exact=True).click()
        heading("Runs", "back to the runs")
        failed_id = page.locator("table#runs tr.failed a").first.inner_text()
        page.locator("table#runs tr.failed a").first.click()
        heading(f"Run {failed_id}", "a run's page")
        check("check failed, nothing was published" in page.get_by_role("alert").inner_text(), "the failed run's error")
        check(page.locator("table#checks .status.failed").count() == 1, "its failed check")
        shot("run-failed")
        page.go_back()
        heading("Runs", "back to the runs")
        succeeded_id = page.locator("table#runs tbody tr:not(.failed) a").first.inner_text()
        page.locator("table#runs tbody tr:not(.failed) a").first.click()
        heading(f"Run {succeeded_id}", "a succeeded run's page")
        check(page.locator("table#targets tbody tr").count() >= 1, "a succeeded run's targets")
        shot("run")
        browser.close()
    check(errors == [], f"the browser logged no error ({errors})")


def main():
    binary = os.path.abspath(sys.argv[1])
    with tempfile.TemporaryDirectory() as work:
        home = os.path.join(work, ".etl")
        key = prepare(binary, work, home)
        server, url, log = start(binary, work, home)
        try:
            schemathesis(url, key)
            console(url, key)
        finally:
            server.send_signal(signal.SIGTERM)
            code = server.wait(timeout=60)
        check(code == 0, "SIGTERM stops the server cleanly")
        check(not any(key in line for line in log), "the key is in no log line")
    print(f"all serve checks passed; screenshots in {SCREENSHOTS}")


if __name__ == "__main__":
    main()
