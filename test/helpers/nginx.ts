/**
 * A real nginx (Debian package) as a TLS reverse proxy in front of the bridge, for tests: a
 * self-signed certificate made with openssl, a config in a temp dir, loopback only, the free port
 * chosen by the system. The proxy sets X-Forwarded-For/-Proto/-Host the way docs/guides/reverse-proxy.md
 * tells users to, streams bodies both ways (no buffering: large PUTs and GETs, 100-continue), and
 * keeps its access log so that tests can compare what it saw with what the bridge logged.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, which } from '../e2e/_e2e-util.js';

export const NGINX = which('nginx');

export interface NginxProxy {
  /** https://127.0.0.1:<port> */
  url: string;
  port: number;
  dir: string;
  /** PEM of the self-signed certificate (for clients that pin it). */
  certFile: string;
  accessLog(): Promise<string>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export async function selfSignedCert(dir: string): Promise<{ cert: string; key: string }> {
  const cert = join(dir, 'cert.pem');
  const key = join(dir, 'key.pem');
  const res = await run(
    'openssl',
    ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '2', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1,DNS:localhost'],
    { timeoutMs: 30_000 },
  );
  if (res.code !== 0) throw new Error(`openssl failed: ${res.stderr}`);
  return { cert, key };
}

/** Start nginx proxying https://127.0.0.1:<free port>/ to `upstream` (http://127.0.0.1:<bridge port>). */
export async function startNginx(upstream: string): Promise<NginxProxy> {
  if (!NGINX) throw new Error('nginx is not installed');
  const dir = await mkdtemp(join(tmpdir(), 'tbdav-nginx-'));
  const { cert, key } = await selfSignedCert(dir);
  for (const d of ['client_body', 'proxy', 'fastcgi', 'uwsgi', 'scgi']) await mkdir(join(dir, 'tmp', d), { recursive: true });
  let lastErr = '';
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const conf = `
${process.getuid?.() === 0 ? 'user root root;' : ''}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
daemon off;
master_process on;
events { worker_connections 256; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/tmp/client_body;
  proxy_temp_path ${dir}/tmp/proxy;
  fastcgi_temp_path ${dir}/tmp/fastcgi;
  uwsgi_temp_path ${dir}/tmp/uwsgi;
  scgi_temp_path ${dir}/tmp/scgi;
  server {
    listen 127.0.0.1:${port} ssl;
    ssl_certificate ${cert};
    ssl_certificate_key ${key};
    client_max_body_size 0;
    location / {
      proxy_pass ${upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;
      proxy_set_header X-Forwarded-Proto $scheme;
      proxy_set_header X-Forwarded-Host $http_host;
      proxy_request_buffering off;
      proxy_buffering off;
      proxy_read_timeout 3600s;
      proxy_send_timeout 3600s;
    }
  }
}
`;
    const confFile = join(dir, 'nginx.conf');
    await writeFile(confFile, conf);
    const child: ChildProcess = spawn(NGINX, ['-p', dir, '-c', confFile, '-e', join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    child.stderr!.setEncoding('utf8').on('data', (d: string) => (stderr += d));
    const exited = new Promise<void>((resolve) => child.on('close', () => resolve()));
    // Ready when the port accepts connections (or nginx gave up, e.g. the port was taken meanwhile).
    const ready = await waitForPort(port, exited);
    if (!ready) {
      lastErr = stderr + (await readFile(join(dir, 'error.log'), 'utf8').catch(() => ''));
      continue;
    }
    return {
      url: `https://127.0.0.1:${port}`,
      port,
      dir,
      certFile: cert,
      accessLog: () => readFile(join(dir, 'access.log'), 'utf8'),
      async close() {
        child.kill('SIGQUIT');
        const t = setTimeout(() => child.kill('SIGKILL'), 5000);
        await exited;
        clearTimeout(t);
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`nginx did not start: ${lastErr}`);
}

async function waitForPort(port: number, exited: Promise<void>): Promise<boolean> {
  let gone = false;
  void exited.then(() => (gone = true));
  const { connect } = await import('node:net');
  for (let i = 0; i < 100 && !gone; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const s = connect(port, '127.0.0.1');
      s.once('connect', () => {
        s.destroy();
        resolve(true);
      });
      s.once('error', () => resolve(false));
    });
    if (ok) return true;
    await new Promise((r) => setTimeout(r, 100));
  }
  return false;
}
