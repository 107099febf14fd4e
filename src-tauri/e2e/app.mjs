// Steps the end-to-end files share: starting the real app under WebKitWebDriver, and the
// sandbox with a customers job on it.
import { T } from "./testids.mjs";
import { Session, startDriver, until } from "./webdriver.mjs";

/**
 * WebKitWebDriver and the app at `binary` under it, with `env` over this process's
 * environment; resolves once the dashboard is shown. `stop()` ends both.
 */
export async function startApp({ binary, logFile, env }) {
  const driver = await startDriver({
    logFile,
    env: {
      ...process.env,
      TAURI_WEBVIEW_AUTOMATION: "true",
      SYNCDESK_LOG: process.env.SYNCDESK_LOG ?? "info",
      ...env,
    },
  });
  const s = await Session.create(driver.url, binary);
  await s.testId(T.navDashboard, 30000);
  return {
    driver,
    s,
    async stop() {
      await s.close();
      await driver.stop();
    },
  };
}

/** Start the built-in sandbox from its panel and create its customers job; the job's id. */
export async function sandboxCustomersJob(s) {
  await s.clickTestId(T.navSandbox);
  await s.clickTestId(T.sandboxStart);
  await until("the sandbox to run", async () => {
    const el = (await s.all(s.byTestId(T.sandboxStatus)))[0];
    return el && (await s.attr(el, "data-status")) === "running";
  });
  await s.click(await s.findXPath("//button[contains(., 'Create a customers job')]"));
  const nav = await s.find(`[data-testid^="${T.navJobPrefix}"]`);
  return (await s.attr(nav, "data-testid")).slice(T.navJobPrefix.length);
}
