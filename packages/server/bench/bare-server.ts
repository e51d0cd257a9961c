import { createServer } from 'node:http';

// The reference point of the benchmark: node:http answering 100 bytes to
// every request, after reading its body, with nothing else in the way.
const VALUE = Buffer.alloc(100, 'v');
const [host = '127.0.0.1', port = '0'] = process.argv.slice(2);

const server = createServer((req, res) => {
  req.resume();
  req.on('end', () => {
    res.writeHead(200, { 'content-type': 'application/octet-stream', 'content-length': VALUE.length });
    res.end(VALUE);
  });
});
server.listen(Number(port), host, () => {
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : Number(port);
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://${host}:${bound}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
