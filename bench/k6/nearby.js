// ListNearbyMissions (public) through Envoy's JSON port: the 10 nearest open missions within
// 50 km of a point a few kilometres around San Francisco (the dense cluster of the data).
import http from 'k6/http';
import { BASE_URL, arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('nearby');

export default function () {
  const lat = 37.7749 + (Math.random() - 0.5) * 0.1;
  const lng = -122.4194 + (Math.random() - 0.5) * 0.1;
  const url = `${BASE_URL}/api/v1/missions/nearby?lat=${lat.toFixed(5)}&lng=${lng.toFixed(5)}&radius=50&limit=10`;
  const res = http.get(url, { timeout: '10s' });
  if (res.status !== 200) {
    failed('ListNearbyMissions', res.status, res.headers['X-Request-Id'] || '');
  }
}

export const handleSummary = summary;
