/** Building and emptying DOM and SVG elements; text only ever goes in through textContent. */

const SVGNS = 'http://www.w3.org/2000/svg';

type Attrs = Record<string, string | number | null | undefined>;
type Child = Node | string | null | undefined;

export function h<K extends keyof HTMLElementTagNameMap>(tag: K, attrs?: Attrs, children?: Child[]): HTMLElementTagNameMap[K] {
  return fill(document.createElement(tag), attrs, children);
}
export function s<K extends keyof SVGElementTagNameMap>(tag: K, attrs?: Attrs, children?: Child[]): SVGElementTagNameMap[K] {
  return fill(document.createElementNS(SVGNS, tag), attrs, children);
}
function fill<E extends Element>(el: E, attrs?: Attrs, children?: Child[]): E {
  for (const [k, v] of Object.entries(attrs ?? {})) {
    if (v === undefined || v === null) continue;
    if (k === 'text') el.textContent = String(v);
    else el.setAttribute(k, String(v));
  }
  for (const c of children ?? []) {
    if (c === null || c === undefined) continue;
    el.appendChild(typeof c === 'string' ? document.createTextNode(c) : c);
  }
  return el;
}
export function clear<E extends Element>(el: E): E {
  while (el.firstChild) el.removeChild(el.firstChild);
  return el;
}
export function $(id: string): HTMLElement {
  const el = document.getElementById(id);
  if (!el) throw new Error('no element #' + id + ' in the page');
  return el;
}
