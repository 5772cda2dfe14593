// The `metrics` setting: where `nqqueue serve` answers /metrics. A loopback address by default; any
// other address only with the word `public` after it, written by the admin on purpose (the figures
// tell an outsider which backends are down and how much mail flows).

export interface MetricsListen {
  readonly host: string;
  readonly port: number;
  readonly public: boolean;
}

export function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '::1' || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(host);
}

/** `''` or `off`: no listener. `HOST:PORT` (port 0: any free port), `[IPv6]:PORT`; `... public` for a non-loopback HOST. */
export function parseMetricsListen(v: string): MetricsListen | undefined {
  const t = v.trim();
  if (t === '' || t === 'off') return undefined;
  const m = /^(\[[0-9a-fA-F:]+\]|[0-9.]+|localhost):(\d{1,5})(?:\s+(public))?$/.exec(t);
  if (!m || Number(m[2]) > 65535) throw new Error(`use HOST:PORT (127.0.0.1:9466), HOST:PORT public for a non-loopback address, or off — not ${JSON.stringify(v)}`);
  const host = m[1]!.replace(/^\[|\]$/g, '');
  const ipv4 = /^\d{1,3}(\.\d{1,3}){3}$/.test(host) && host.split('.').every((x) => Number(x) <= 255);
  if (/^[0-9.]+$/.test(host) && !ipv4) throw new Error(`not an IP address: ${JSON.stringify(host)}`);
  const pub = m[3] === 'public';
  if (!pub && !isLoopback(host)) throw new Error(`${host} is not a loopback address: write "${t} public" to serve the metrics to the network`);
  return { host, port: Number(m[2]), public: pub };
}
