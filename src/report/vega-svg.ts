/**
 * vega-lite spec → SVG, headless: vega's `renderer: 'none'` view renders SVG strings without a
 * canvas (text widths are estimated), so no native module is needed on a worker.
 *
 * vega and vega-lite are ES modules with top-level await (vega-canvas probes for `canvas`), which
 * `require` cannot load: they are imported dynamically, once.
 */
import type { TopLevelSpec } from 'vega-lite/build/index';
import type { PlotSpec } from './charts';

type Vega = typeof import('vega');
type VegaLite = typeof import('vega-lite/build/index');

let libs: Promise<[Vega, VegaLite]> | undefined;

function load(): Promise<[Vega, VegaLite]> {
  // vega-lite's types resolve only through its `exports` map, which this project's `node`
  // module resolution ignores: typed through its build path, imported by its package name.
  const vegaLite: string = 'vega-lite';
  libs ??= Promise.all([import('vega'), import(vegaLite) as Promise<VegaLite>]);
  return libs;
}

/** One spec as a standalone SVG document. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const [vega, vl] = await load();
  const view = new vega.View(vega.parse(vl.compile(spec).spec), { renderer: 'none' });
  try {
    return (await view.toSVG()) + '\n';
  } finally {
    view.finalize();
  }
}

/** A rendered figure, ready to store under `plots/<file>`. */
export type PlotFile = Omit<PlotSpec, 'spec'> & { svg: string };

/**
 * Renders every figure, in order, calling `onFigure` after each: a grid's report has dozens, and
 * the activity heartbeats between them.
 */
export async function renderPlots(specs: readonly PlotSpec[], onFigure: () => void = () => {}): Promise<PlotFile[]> {
  const out: PlotFile[] = [];
  for (const { spec, ...rest } of specs) {
    out.push({ ...rest, svg: await renderSvg(spec) });
    onFigure();
  }
  return out;
}
