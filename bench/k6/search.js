// SearchContent (public) through Envoy's JSON port: a query built from a subject and a place,
// QUERIES (env) distinct combinations, so the service embeds most queries anew.
import http from 'k6/http';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('search');

const SUBJECTS = [
  'contaminated drinking water', 'school dropout of girls', 'clinic closed for lack of nurses',
  'flooding of informal settlements', 'crop failure after drought', 'isolated elderly people',
  'no internet access in rural schools', 'air pollution from brick kilns', 'coral reef bleaching',
  'domestic violence shelters full', 'power outages in hospitals', 'food prices for families',
  'depression among farmers', 'missing sanitation in camps', 'deforestation near villages',
  'unsafe housing after earthquake', 'child labor in mines', 'wetland bird decline',
  'solar mini grid maintenance', 'youth unemployment and crime',
];
const PLACES = ['', ' in Lagos', ' in Dhaka', ' in rural Peru', ' near the coast', ' in mountain villages',
  ' in refugee camps', ' in small towns', ' in the city', ' for migrants'];

export default function () {
  const q = SUBJECTS[Math.floor(Math.random() * SUBJECTS.length)] +
    PLACES[Math.floor(Math.random() * PLACES.length)];
  const res = http.get(`${BASE_URL}/api/v1/search?q=${encodeURIComponent(q)}`, { timeout: '10s' });
  if (res.status !== 200) {
    failed('SearchContent', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
