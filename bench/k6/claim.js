// ClaimMission through Envoy's JSON port: a random human claims a random mission of a small
// set, so slots run out and FULL/limit answers (409) are part of the load, as in production.
import http from 'k6/http';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('claim');

const data = JSON.parse(open(__ENV.KEYS_FILE));

export default function () {
  const token = data.humans[Math.floor(Math.random() * data.humans.length)];
  const mission = data.missions[Math.floor(Math.random() * data.missions.length)];
  const res = http.post(`${BASE_URL}/api/v1/missions/${mission}/claim`, '{}', {
    headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
    timeout: '10s',
  });
  if (res.status !== 201 && res.status !== 409) {
    failed('ClaimMission', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
