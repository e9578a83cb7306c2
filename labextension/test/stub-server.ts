/**
 * A stub Lepton Lab server for the model tests: a `fetch` handed to
 * `ServerConnection` through its settings, answering from a route table and
 * recording every request.
 */
import { ServerConnection } from '@jupyterlab/services';

import { LeptonClient } from '../src/api';

export interface IRecorded {
  method: string;
  /** The path under the API namespace, with the query (cache buster removed). */
  path: string;
  body: unknown;
}

/** A JSON answer; a handler that throws is a network failure. */
export type Answer = { status?: number; body?: unknown };
export type Handler = (request: IRecorded) => Answer | Promise<Answer>;

export class StubServer {
  readonly requests: IRecorded[] = [];
  readonly routes = new Map<string, Handler>();

  /** Answer `METHOD path` (path without `lepton-lab/api/`, query included). */
  on(route: string, handler: Handler | Answer): this {
    this.routes.set(
      route,
      typeof handler === 'function' ? (handler as Handler) : () => handler
    );
    return this;
  }

  /** The requests of one route. */
  calls(route: string): IRecorded[] {
    return this.requests.filter(r => `${r.method} ${r.path}` === route);
  }

  client(): LeptonClient {
    const settings = ServerConnection.makeSettings({
      baseUrl: 'http://lab.test/',
      token: 'secret',
      fetch: (input: RequestInfo) => this._fetch(input as Request)
    });
    return new LeptonClient(settings);
  }

  private async _fetch(request: Request): Promise<Response> {
    const url = new URL(request.url);
    // ServerConnection appends a cache buster: a query key of digits only
    const query = [...url.searchParams.entries()]
      .filter(([key, value]) => !(value === '' && /^\d+$/.test(key)))
      .map(([key, value]) => `${key}=${value}`)
      .join('&');
    const path =
      url.pathname.replace(/^\/lepton-lab\/api\//, '') +
      (query ? `?${query}` : '');
    const text = await request.text();
    const recorded: IRecorded = {
      method: request.method,
      path,
      body: text ? JSON.parse(text) : undefined
    };
    this.requests.push(recorded);
    const handler =
      this.routes.get(`${request.method} ${path}`) ??
      this.routes.get(
        `${request.method} ${url.pathname.replace(/^\/lepton-lab\/api\//, '')}`
      );
    if (!handler) {
      return new Response(
        JSON.stringify({ message: `no route ${request.method} ${path}` }),
        {
          status: 404,
          statusText: 'Not Found'
        }
      );
    }
    const answer = await handler(recorded);
    const { status = 200, body } = answer;
    // a 204 has no body at all (the Response constructor refuses even '')
    const noBody = status === 204 || status === 205 || status === 304;
    return new Response(
      noBody ? null : body === undefined ? '' : JSON.stringify(body),
      { status, headers: { 'Content-Type': 'application/json' } }
    );
  }
}

/** Resolve after pending timers and promises (the polls' immediate ticks). */
export function settle(ms = 0): Promise<void> {
  return new Promise(resolve => setTimeout(resolve, ms));
}

/**
 * Resolve once `check()` holds (or after `ms`, and the caller's expectations then fail):
 * for chains of requests and redraws that a loaded machine may not finish in a fixed tick.
 */
export async function until(check: () => boolean, ms = 5000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check() && Date.now() < deadline) {
    await settle(5);
  }
}
