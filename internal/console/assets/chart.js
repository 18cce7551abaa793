// A small SVG bar chart: one bar per minute, the latest on the right, with the peak labelled.
const NS = 'http://www.w3.org/2000/svg';

export function barChart(el, values, { color = '#1c5fb8', unit = '', digits = 0 } = {}) {
  const w = 300, h = 90, pad = 14;
  const peak = Math.max(0, ...values);
  const svg = document.createElementNS(NS, 'svg');
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('preserveAspectRatio', 'none');
  const bw = w / Math.max(values.length, 1);
  values.forEach((v, i) => {
    if (!v) return;
    const bh = peak ? (v / peak) * (h - pad) : 0;
    const r = document.createElementNS(NS, 'rect');
    r.setAttribute('x', (i * bw + 0.5).toFixed(1));
    r.setAttribute('width', Math.max(bw - 1, 1).toFixed(1));
    r.setAttribute('y', (h - bh).toFixed(1));
    r.setAttribute('height', bh.toFixed(1));
    r.setAttribute('fill', color);
    const t = document.createElementNS(NS, 'title');
    t.textContent = `${v.toFixed(digits)}${unit}`;
    r.appendChild(t);
    svg.appendChild(r);
  });
  const base = document.createElementNS(NS, 'line');
  Object.entries({ x1: 0, x2: w, y1: h - 0.5, y2: h - 0.5, stroke: '#ccd' }).forEach(([k, v]) => base.setAttribute(k, v));
  svg.appendChild(base);
  const label = document.createElementNS(NS, 'text');
  label.setAttribute('x', 2); label.setAttribute('y', 10);
  label.setAttribute('font-size', 10); label.setAttribute('fill', '#667085');
  label.textContent = `max ${peak.toFixed(digits)}${unit}`;
  svg.appendChild(label);
  el.replaceChildren(svg);
}
