/**
 * A scripted user agent: fetch with a cookie jar (name, path, expiry), manual
 * redirects and small helpers to read and submit Twofold's own forms.
 */

interface Cookie {
  name: string;
  value: string;
  path: string;
  expires: number | null;
}

export interface Page {
  status: number;
  url: string;
  location: string | null;
  html: string;
  headers: Headers;
}

function parseSetCookie(header: string, requestPath: string): Cookie {
  const [pair, ...attrs] = header.split(';').map((s) => s.trim());
  const eq = pair!.indexOf('=');
  const cookie: Cookie = { name: pair!.slice(0, eq), value: pair!.slice(eq + 1), path: requestPath.replace(/\/[^/]*$/, '') || '/', expires: null };
  for (const attr of attrs) {
    const [k, v = ''] = attr.split('=');
    const key = k!.toLowerCase();
    if (key === 'path') cookie.path = v;
    if (key === 'max-age') cookie.expires = Date.now() + Number(v) * 1000;
    if (key === 'expires' && cookie.expires === null) cookie.expires = Date.parse(v);
  }
  return cookie;
}

export class Agent {
  private jar = new Map<string, Cookie>();

  constructor(readonly origin: string) {}

  cookieHeader(path: string): string {
    const now = Date.now();
    return [...this.jar.values()]
      .filter((c) => (c.expires === null || c.expires > now) && (path === c.path || path.startsWith(c.path.endsWith('/') ? c.path : `${c.path}/`)))
      .map((c) => `${c.name}=${c.value}`).join('; ');
  }

  cookieNames(): string[] {
    return [...this.jar.values()].map((c) => c.name);
  }

  /** The value of a cookie the browser holds, if any. */
  cookie(name: string): string | undefined {
    return [...this.jar.values()].find((c) => c.name === name)?.value;
  }

  clearCookies(): void {
    this.jar.clear();
  }

  /** One request, no redirect following. */
  async request(method: string, url: string, body?: Record<string, string> | string, headers: Record<string, string> = {}): Promise<Page> {
    const target = new URL(url, this.origin);
    const h: Record<string, string> = { ...headers };
    if (target.origin === this.origin) {
      const cookie = this.cookieHeader(target.pathname);
      if (cookie) h.cookie = cookie;
    }
    let payload: string | undefined;
    if (typeof body === 'string') payload = body;
    else if (body) {
      payload = new URLSearchParams(body).toString();
      h['content-type'] = 'application/x-www-form-urlencoded';
    }
    const res = await fetch(target, { method, headers: h, body: payload, redirect: 'manual' });
    if (target.origin === this.origin) {
      for (const sc of res.headers.getSetCookie()) {
        const c = parseSetCookie(sc, target.pathname);
        this.jar.set(`${c.name};${c.path}`, c);
      }
    }
    const location = res.headers.get('location');
    return { status: res.status, url: target.href, location: location && new URL(location, target).href, html: await res.text(), headers: res.headers };
  }

  /** Follows redirects while they stay on this origin; stops at the first one that leaves it. */
  async follow(page: Page): Promise<Page> {
    let current = page;
    for (let i = 0; i < 20 && current.location && current.status >= 300 && current.status < 400; i += 1) {
      if (new URL(current.location).origin !== this.origin) return current;
      current = await this.request('GET', current.location);
    }
    return current;
  }

  async get(url: string): Promise<Page> {
    return this.follow(await this.request('GET', url));
  }

  /** Submits the form whose action ends with `actionSuffix`, adding its hidden fields. */
  async submit(page: Page, actionSuffix: string, fields: Record<string, string>): Promise<Page> {
    const form = findForm(page.html, actionSuffix);
    return this.follow(await this.request('POST', form.action, { ...form.hidden, ...fields }));
  }
}

export function findForm(html: string, actionSuffix: string): { action: string; hidden: Record<string, string> } {
  for (const m of html.matchAll(/<form[^>]*action="([^"]+)"[^>]*>([\s\S]*?)<\/form>/g)) {
    if (!m[1]!.endsWith(actionSuffix)) continue;
    const hidden: Record<string, string> = {};
    for (const input of m[2]!.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"/g)) hidden[input[1]!] = decodeEntities(input[2]!);
    return { action: decodeEntities(m[1]!), hidden };
  }
  throw new Error(`no form with action …${actionSuffix} on the page:\n${html.slice(0, 2000)}`);
}

export function decodeEntities(s: string): string {
  return s.replace(/&#(\d+);/g, (_, d: string) => String.fromCharCode(Number(d))).replace(/&amp;/g, '&').replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&quot;/g, '"');
}

/** The text of the page's alert, if any. */
export function alertText(html: string): string | undefined {
  return /<p class="alert" role="alert">([\s\S]*?)<\/p>/.exec(html)?.[1]?.trim().replace(/&#39;/g, "'");
}
