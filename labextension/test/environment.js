/**
 * jsdom, plus Node's fetch API (Request, Response, Headers), which jsdom
 * lacks: the tests hand ServerConnection a stub `fetch` that answers with
 * real `Response`s.
 */
const { TestEnvironment } = require('jest-environment-jsdom');

const NODE_GLOBALS = [
  'fetch',
  'Request',
  'Response',
  'Headers',
  'ReadableStream',
  'TextEncoder',
  'TextDecoder',
  'structuredClone'
];

class Environment extends TestEnvironment {
  constructor(config, context) {
    super(config, context);
    for (const name of NODE_GLOBALS) {
      if (typeof this.global[name] === 'undefined' && name in globalThis) {
        this.global[name] = globalThis[name];
      }
    }
  }
}

module.exports = Environment;
