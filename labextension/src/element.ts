/** Create an element with a class and optional text (the sidebar builds its DOM by hand). */
export function el<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  className?: string,
  text?: string
): HTMLElementTagNameMap[K] {
  const node = document.createElement(tag);
  if (className) {
    node.className = className;
  }
  if (text !== undefined) {
    node.textContent = text;
  }
  return node;
}

/** After errors a sidebar poll backs off, up to this interval. */
export const MAX_BACKOFF_MS = 15000;
