/**
 * jsdom, plus Node's fetch API (Request, Response, Headers), which jsdom
 * lacks: the tests hand ServerConnection a stub `fetch` that answers with
 * real `Response`s. Also `DragEvent`, `matchMedia`, `requestIdleCallback` and a
 * clipboard for JupyterLab's widgets.
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
    // @lumino/dragdrop subclasses DragEvent, and JupyterLab's web components
    // ask matchMedia at import: jsdom has neither
    if (typeof this.global.DragEvent === 'undefined') {
      this.global.DragEvent = class DragEvent extends this.global.MouseEvent {};
    }
    if (!this.global.navigator.clipboard) {
      // an empty system clipboard (apputils warns at import without one)
      Object.defineProperty(this.global.navigator, 'clipboard', {
        value: {
          read: async () => [],
          readText: async () => '',
          write: async () => undefined,
          writeText: async () => undefined
        }
      });
    }
    if (typeof this.global.requestIdleCallback === 'undefined') {
      // a dialog's React header renders when the page is idle
      const global = this.global;
      global.requestIdleCallback = callback =>
        global.setTimeout(() =>
          callback({ didTimeout: false, timeRemaining: () => 0 })
        );
      global.cancelIdleCallback = handle => global.clearTimeout(handle);
    }
    if (typeof this.global.matchMedia === 'undefined') {
      this.global.matchMedia = query => ({
        matches: false,
        media: query,
        onchange: null,
        addListener: () => undefined,
        removeListener: () => undefined,
        addEventListener: () => undefined,
        removeEventListener: () => undefined,
        dispatchEvent: () => false
      });
    }
  }
}

module.exports = Environment;
