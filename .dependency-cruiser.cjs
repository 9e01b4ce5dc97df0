/**
 * The import rule of src/ (CONTRIBUTING.md, "Layout"): imports run one way, down. main.ts picks the mode; save/,
 * load/ and delete/ are the flows; images.ts says what an archive's image is to an engine; action/ is the action's
 * own I/O; the wrappers of the outside (engine/, artifacts/, archive/) know nothing of each other; the files directly
 * in src/ are the base everything may use, and use nothing above them.
 */
const FLOW_FOLDERS = ['save', 'load', 'delete'];
const FLOWS = `^src/(${FLOW_FOLDERS.join('|')})/`;
const WRAPPERS = ['engine', 'artifacts', 'archive'];
const above = (...folders) => `^src/(${folders.join('|')})/|^src/(main|images)\\.ts$`;

module.exports = {
  forbidden: [
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'A loop: two modules that need each other.',
      from: {},
      to: { circular: true },
    },
    {
      name: 'base-imports-nothing-above',
      severity: 'error',
      comment: 'The base (files directly in src/) is used by everything and uses nothing above it.',
      from: { path: '^src/[^/]+\\.ts$', pathNot: '^src/(main|images)\\.ts$' },
      to: { path: '^src/[^/]+/|^src/(main|images)\\.ts$', pathNot: '^src/types/' },
    },
    ...WRAPPERS.map((folder) => ({
      name: `${folder}-knows-no-other-wrapper`,
      severity: 'error',
      comment: `${folder}/ wraps one outside thing; it uses the base only.`,
      from: { path: `^src/${folder}/` },
      to: { path: above(...WRAPPERS.filter((other) => other !== folder), 'action', ...FLOW_FOLDERS) },
    })),
    {
      name: 'action-io-below-the-flows',
      severity: 'error',
      comment: "action/ (inputs, outputs, summary, the run's context) is used by the flows, never the other way.",
      from: { path: '^src/action/' },
      to: { path: `${FLOWS}|^src/(main|images)\\.ts$` },
    },
    {
      name: 'images-below-the-flows',
      severity: 'error',
      comment: 'images.ts bridges the engine and the archive model, for the flows.',
      from: { path: '^src/images\\.ts$' },
      to: { path: `${FLOWS}|^src/(action|artifacts)/|^src/main\\.ts$` },
    },
    {
      name: 'flows-apart',
      severity: 'error',
      comment: 'The flows share only what lies below them.',
      from: { path: FLOWS },
      to: { path: '^src/main\\.ts$' },
    },
    ...FLOW_FOLDERS.flatMap((flow) =>
      FLOW_FOLDERS.filter((other) => other !== flow).map((other) => ({
        name: `${flow}-not-${other}`,
        severity: 'error',
        from: { path: `^src/${flow}/` },
        to: { path: `^src/${other}/` },
      })),
    ),
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: 'node_modules' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: { extensions: ['.ts', '.js'] },
  },
};
