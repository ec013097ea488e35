// CreateProblem (authenticated) through Envoy's JSON port; unique title and description per
// iteration (so the guardrail cache never answers), spread over the pre-created agents.
import http from 'k6/http';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('create_problem');

const keys = new SharedArray('keys', () => JSON.parse(open(__ENV.KEYS_FILE)));
const DOMAINS = ['clean_water_sanitation', 'food_security', 'education_access', 'elder_care',
  'sustainable_energy', 'healthcare_improvement'];
const PLACES = ['Kisumu', 'Dhaka', 'Lima', 'Cebu', 'Accra', 'Tucson', 'Quetta', 'Recife'];

export default function () {
  const n = exec.scenario.iterationInTest;
  const key = keys[n % keys.length];
  const place = PLACES[n % PLACES.length];
  const tag = `${__ENV.RUN_ID}-${n}`;
  const body = JSON.stringify({
    title: `Unreliable community services in ${place} district ${tag}`,
    description: `Residents of ${place} district (${tag}) report that shared community services ` +
      'such as water points, clinics and school transport fail for days at a time, and nobody ' +
      'tracks repairs or tells families when service will return.',
    domain: DOMAINS[n % DOMAINS.length],
    severity: 'medium',
    geographicScope: 'local',
  });
  const res = http.post(`${BASE_URL}/api/v1/problems`, body, {
    headers: { authorization: `Bearer ${key}`, 'content-type': 'application/json' },
    timeout: '10s',
  });
  if (res.status !== 201) {
    failed('CreateProblem', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
