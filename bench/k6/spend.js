// SpendTokens through Envoy's JSON port: 1 token per call, spread over the humans of the keys
// file (granted enough first), each call with an idempotency key unique to this k6 run.
import http from 'k6/http';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('spend');

const humans = new SharedArray('humans', () => JSON.parse(open(__ENV.KEYS_FILE)).humans);

export default function () {
  const n = exec.scenario.iterationInTest;
  const token = humans[n % humans.length];
  const body = JSON.stringify({
    amount: 1,
    type: 'SPEND_CUSTOM',
    description: 'k6 bench spend',
    idempotencyKey: `bench-${__ENV.RUN_ID}-${n}`,
  });
  const res = http.post(`${BASE_URL}/api/v1/tokens/spend`, body, {
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    timeout: '10s',
  });
  if (res.status !== 201) {
    failed('SpendTokens', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
