// hello: the example app that molt releases in its demo and tests.
// It answers every HTTP request with its version, and can be told to misbehave
// so that trials and rollbacks can be shown: a file named `behaviour` in the
// release holds `crash` (exit 1 after 300 ms), `hang` (never listen, never ready)
// or `ok` (pack.sh's `exit` makes a release whose run exits at once).
import http from 'node:http';
import fs from 'node:fs';

const here = new URL('.', import.meta.url).pathname;
const version = fs.readFileSync(here + 'VERSION', 'utf8').trim();
let behaviour = 'ok';
try {
  behaviour = fs.readFileSync(here + 'behaviour', 'utf8').trim();
} catch {
  // default
}

console.log(`hello ${version} starting (behaviour ${behaviour})`);
if (behaviour === 'crash') {
  setTimeout(() => {
    console.log(`hello ${version}: crashing on purpose`);
    process.exit(1);
  }, 300);
}
if (behaviour === 'hang') {
  setInterval(() => {}, 1000);
} else {
  const server = http.createServer((req, res) => {
    res.setHeader('content-type', 'application/json');
    res.end(JSON.stringify({ app: 'hello', version, pid: process.pid }) + '\n');
  });
  // Socket activation (molt `listen` files, systemd): the listening socket is fd 3.
  const inherited = Number(process.env.LISTEN_FDS || 0) > 0 && Number(process.env.LISTEN_PID) === process.pid;
  const port = Number(process.env.HELLO_PORT || 8080);
  const onListening = () => {
    console.log(`hello ${version} listening on ${inherited ? 'fd 3' : `port ${port}`}`);
    // s6 readiness (a `notification-fd` file in the service directory): one newline on that fd.
    const notifyFd = Number(process.env.HELLO_NOTIFY_FD || 0);
    if (notifyFd >= 3) {
      try {
        fs.writeSync(notifyFd, '\n');
        fs.closeSync(notifyFd);
      } catch {
        // not given that fd: nothing to tell
      }
    }
  };
  if (inherited) server.listen({ fd: 3 }, onListening);
  else server.listen(port, process.env.HELLO_HOST || '127.0.0.1', onListening);
  const stop = () => server.close(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

