import express from 'express';

// The facade bench's reference: the shape of the dht-node program, an
// express app answering POST, GET and DELETE of /d/<key> from a Map in
// memory, with the value as the raw request body.
const [host = '127.0.0.1', port = '0'] = process.argv.slice(2);

const store = new Map<string, Buffer>();
const app = express();
app.post('/d/:key', express.raw({ type: () => true, limit: '1mb' }), (req, res) => {
  const key = req.params['key']!;
  const created = !store.has(key);
  store.set(key, Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
  res.status(created ? 201 : 200).json({ key, status: created ? 'created' : 'updated' });
});
app.get('/d/:key', (req, res) => {
  const value = store.get(req.params['key']!);
  if (value === undefined) res.status(404).json({ error: 'not found' });
  else res.type('application/octet-stream').send(value);
});
app.delete('/d/:key', (req, res) => {
  const key = req.params['key']!;
  if (!store.delete(key)) res.status(404).json({ error: 'not found' });
  else res.json({ key, status: 'deleted' });
});
const server = app.listen(Number(port), host, () => {
  const address = server.address();
  const bound = typeof address === 'object' && address !== null ? address.port : Number(port);
  process.stdout.write(`${JSON.stringify({ msg: 'listening', url: `http://${host}:${bound}` })}\n`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
