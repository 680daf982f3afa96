/**
 * Ends a foreground command when the process that started it goes away. `npm start` does not
 * pass SIGTERM on to its script: npm exits and its child is re-parented (to init or a
 * subreaper), still holding its ports and files. No signal reaches it then, so the parent is
 * polled: getppid() changing is the one portable sign on Linux and macOS. A process started
 * by init (ppid 1) or as PID 1 has no parent to lose, and is not watched.
 */

/** Calls `onGone` once when the parent process changes; returns a function that stops watching. */
export function watchParent(onGone: () => void, intervalMs = 500): () => void {
  const parent = process.ppid;
  if (parent <= 1) return () => undefined;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    onGone();
  }, intervalMs);
  timer.unref(); // never what keeps the process alive
  return () => clearInterval(timer);
}
