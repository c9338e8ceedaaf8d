/**
 * Milliseconds on a monotonic clock (for durations and deadlines), as performance.now() gives
 * them, without performance: that global loads node:perf_hooks and its nine internal modules on
 * first use, ~0.8 ms of CPU in every hook call for a few subtractions.
 */
export function monotonicMs(): number {
  return Number(process.hrtime.bigint()) / 1e6;
}
