// mqttjs_client.js URL VERSION CLIENT-ID IN-TOPIC OUT-TOPIC [CA-FILE]
//
// MQTT.js, the library of browser MQTT clients, as websocket.py's
// client: it connects to URL (ws:// or wss://, trusting CA-FILE),
// subscribes to IN-TOPIC at QoS 1 and prints "ready"; the first message
// that comes is printed ("got TOPIC PAYLOAD") and sent back to OUT-TOPIC
// as "echo PAYLOAD" at QoS 1; then it disconnects and exits 0.  Any
// error exits non-zero with a message on stderr.
'use strict';

const fs = require('fs');
const mqtt = require('mqtt');

const [url, version, clientId, inTopic, outTopic, ca] = process.argv.slice(2);
const opts = {
  clientId,
  protocolVersion: Number(version),
  reconnectPeriod: 0,
  connectTimeout: 30000,
};
if (ca) {
  opts.ca = fs.readFileSync(ca);
}

const client = mqtt.connect(url, opts);
client.on('connect', () => {
  client.subscribe(inTopic, { qos: 1 }, (err, granted) => {
    if (err || granted[0].qos !== 1) {
      console.error('subscribe failed: ' + (err ? err.message : JSON.stringify(granted)));
      process.exit(2);
    }
    console.log('ready');
  });
});
client.once('message', (topic, payload) => {
  console.log('got ' + topic + ' ' + payload.toString());
  client.publish(outTopic, 'echo ' + payload.toString(), { qos: 1 }, (err) => {
    if (err) {
      console.error('publish failed: ' + err.message);
      process.exit(3);
    }
    client.end(false, () => process.exit(0));
  });
});
client.on('error', (err) => {
  console.error('error: ' + err.message);
  process.exit(1);
});
client.on('close', () => {
  if (!client.disconnecting) {
    console.error('closed by the broker');
    process.exit(4);
  }
});
