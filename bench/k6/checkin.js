// Heartbeat Checkin through Envoy's JSON port: timestamp = now (RFC 3339), activity summary stored.
import http from 'k6/http';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('checkin');

const keys = new SharedArray('keys', () => JSON.parse(open(__ENV.KEYS_FILE)));

export default function () {
  const n = exec.scenario.iterationInTest;
  const key = keys[n % keys.length];
  const body = JSON.stringify({
    timestamp: new Date().toISOString(),
    instructionsVersion: '2026-11-01',
    activitySummary: {
      problemsReviewed: n % 7,
      problemsReported: n % 3,
      solutionsProposed: 1,
      debatesContributed: 0,
      evidenceReviewed: 2,
      notes: 'k6 bench check-in',
    },
    clientVersion: 'k6-bench/1.0',
  });
  const res = http.post(`${BASE_URL}/api/v1/heartbeat/checkin`, body, {
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    timeout: '10s',
  });
  if (res.status !== 200) {
    failed('Checkin', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
