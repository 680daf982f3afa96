// The demo app of each zone: answers every request with what it received, so that one can see
// the identity headers zonegate had Envoy set (and the ones it had removed).
import { createServer } from 'node:http';

const zone = process.env.ZONE ?? 'unknown';
const port = Number(process.env.PORT ?? 8080);

createServer((req, res) => {
  const body = JSON.stringify({ zone, method: req.method, path: req.url, headers: req.headers });
  res.writeHead(200, { 'content-type': 'application/json' }).end(`${body}\n`);
}).listen(port, '0.0.0.0', () => console.log(`app of ${zone} listening on ${port}`));

process.on('SIGTERM', () => process.exit(0));
