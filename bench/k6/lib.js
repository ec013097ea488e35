// Shared helpers for the bench scenarios. Everything comes from the environment that
// bench/run.py sets: BASE_URL, RATE, DURATION, PRE_VUS, MAX_VUS, KEYS_FILE, SUMMARY_PATH.
import { Counter } from 'k6/metrics';

export const errors = new Counter('bench_errors');

export const BASE_URL = __ENV.BASE_URL || 'http://127.0.0.1:8080';

const TREND_STATS = ['avg', 'min', 'med', 'max', 'p(90)', 'p(95)', 'p(99)', 'p(99.9)', 'count'];

// One constant-arrival-rate scenario: RATE iterations a second for DURATION, whatever the latency.
export function arrivalOptions(name, extra) {
  const rate = parseInt(__ENV.RATE || '100', 10);
  const options = {
    discardResponseBodies: true,
    summaryTrendStats: TREND_STATS,
    scenarios: {},
  };
  options.scenarios[name] = {
    executor: 'constant-arrival-rate',
    rate: rate,
    timeUnit: '1s',
    duration: __ENV.DURATION || '20s',
    preAllocatedVUs: parseInt(__ENV.PRE_VUS || '50', 10),
    maxVUs: parseInt(__ENV.MAX_VUS || '300', 10),
    gracefulStop: '10s',
  };
  return Object.assign(options, extra || {});
}

// Logs the first few failures of each VU (status and request id), so a failed run says why.
const MAX_LOGGED = 3;
let logged = 0;

export function failed(what, status, detail) {
  errors.add(1);
  if (logged < MAX_LOGGED) {
    logged += 1;
    console.error(`${what}: unexpected status ${status} ${detail || ''}`);
  }
}

export function summary(data) {
  const out = {};
  out[__ENV.SUMMARY_PATH || 'summary.json'] = JSON.stringify(data, null, 1);
  return out;
}
