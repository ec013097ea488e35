// GetMe over native gRPC (h2c) through Envoy's port; one connection per VU.
import grpc from 'k6/net/grpc';
import exec from 'k6/execution';
import { SharedArray } from 'k6/data';
import { arrivalOptions, failed, summary } from './lib.js';

export const options = arrivalOptions('get_me_grpc');

const keys = new SharedArray('keys', () => JSON.parse(open(__ENV.KEYS_FILE)));
const client = new grpc.Client();
client.load([__ENV.PROTO_ROOT, __ENV.GOOGLEAPIS_ROOT], 'betterworld/agent/v1/agent.proto');

let connected = false;

export default function () {
  if (!connected) {
    client.connect(__ENV.GRPC_ADDR, { plaintext: true, timeout: '10s' });
    connected = true;
  }
  const key = keys[exec.scenario.iterationInTest % keys.length];
  const res = client.invoke(
    'betterworld.agent.v1.AgentService/GetMe',
    {},
    { metadata: { authorization: `Bearer ${key}` }, timeout: '10s' },
  );
  if (res.status !== grpc.StatusOK) {
    failed('GetMe(gRPC)', res.status, res.error ? res.error.message : '');
  }
}

export const handleSummary = summary;
