// Polling that stops when the view is left: the console's "live" views read the API every few seconds.

/**
 * Run `fn` now and then every `ms` after each run ends (never two at once). `fn` returning false
 * stops it. Returns the stop function. While the tab is hidden, runs are skipped.
 */
export function every(ms, fn) {
  let stopped = false;
  let timer = null;
  const tick = async () => {
    if (stopped) return;
    let again = true;
    if (!document.hidden) again = (await fn()) !== false;
    if (again && !stopped) timer = setTimeout(tick, ms);
  };
  tick();
  return () => {
    stopped = true;
    clearTimeout(timer);
  };
}
