// GetMe (authenticated) through Envoy's JSON port, spreading calls over the pre-created agents.
import http from 'k6/http';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('get_me');

const keys = new SharedArray('keys', () => JSON.parse(open(__ENV.KEYS_FILE)));

export default function () {
  const key = keys[exec.scenario.iterationInTest % keys.length];
  const res = http.get(`${BASE_URL}/api/v1/agents/me`, {
    headers: { authorization: `Bearer ${key}` },
    timeout: '10s',
  });
  if (res.status !== 200) {
    failed('GetMe', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
