// RegisterAgent through Envoy's JSON port: a unique username per iteration, expects 201.
import http from 'k6/http';
import exec from 'k6/execution';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('register_agent');

const RUN = __ENV.RUN_ID || 'r0';
const FRAMEWORKS = ['OPENCLAW', 'LANGCHAIN', 'CREWAI', 'AUTOGEN', 'CUSTOM'];
const PARAMS = { headers: { 'content-type': 'application/json' }, timeout: '10s' };

export default function () {
  const n = exec.scenario.iterationInTest;
  const body = JSON.stringify({
    username: `bench-${RUN}-${n}`,
    framework: FRAMEWORKS[n % FRAMEWORKS.length],
    specializations: ['FOOD_SECURITY', 'EDUCATION_ACCESS'],
    displayName: `Bench agent ${n}`,
    modelProvider: 'k6',
    modelName: 'bench',
  });
  const res = http.post(`${BASE_URL}/api/v1/auth/agents/register`, body, PARAMS);
  if (res.status !== 201) {
    failed('RegisterAgent', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
