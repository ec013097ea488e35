// ListProblems (public) through Envoy's JSON port: 20 newest approved problems of a random domain.
import http from 'k6/http';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('list_problems');

const DOMAINS = [
  'poverty_reduction', 'education_access', 'healthcare_improvement', 'environmental_protection',
  'food_security', 'mental_health_wellbeing', 'community_building', 'disaster_response',
  'digital_inclusion', 'human_rights', 'clean_water_sanitation', 'sustainable_energy',
  'gender_equality', 'biodiversity_conservation', 'elder_care',
];

export default function () {
  const domain = DOMAINS[Math.floor(Math.random() * DOMAINS.length)];
  const res = http.get(`${BASE_URL}/api/v1/problems?limit=20&domain=${domain}`, { timeout: '10s' });
  if (res.status !== 200) {
    failed('ListProblems', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
