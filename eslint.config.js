// @ts-check
const js = require('@eslint/js');
const tseslint = require('typescript-eslint');
const globals = require('globals');
const path = require('node:path');

/**
 * The rooms of the house (DESIGN.md "Layout"): `lib/<X>/`, `services/<X>/` and `simulator/`. A file may import its
 * own room's files freely; another room only through that room's `index.ts`. Dependencies point one way,
 * `bin → simulator → services → lib`, never service to service (bin/, test/ and bench/ are not rooms: they may import any
 * room's index). Relative specifiers are resolved against the importing file, so `../lib/store/writer` and
 * `../../lib/store/writer` are the same deep import.
 */
const ROOT = __dirname;

/** `lib/store`, `services/ingest`, `simulator`, or undefined (bin/, test/, bench/, outside the repository). */
function roomOf(rel) {
  const parts = rel.split('/');
  if ((parts[0] === 'lib' || parts[0] === 'services') && parts.length > 2) return `${parts[0]}/${parts[1]}`;
  if ((parts[0] === 'lib' || parts[0] === 'services') && parts.length === 2) return `${parts[0]}/${parts[1].replace(/\.[cm]?[jt]s$/, '')}`;
  if (parts[0] === 'simulator') return 'simulator';
  return undefined;
}

/** What a room may depend on: lib only on lib, services on lib, the simulator on lib and services. */
function layerOf(room) {
  return room.startsWith('lib/') ? 0 : room.startsWith('services/') ? 1 : 2;
}

const boundaries = {
  meta: {
    type: 'problem',
    docs: { description: "imports go through a room's index.ts; services never import services; lib imports no service" },
    schema: [],
    messages: {
      deep: "'{{source}}' reaches into {{room}}/ past its index.ts: import from '{{index}}' (DESIGN.md: imports go through a folder's index.ts).",
      serviceToService: "'{{source}}': {{from}} imports {{room}}; services never import services (DESIGN.md: bin → services → lib). Move what both need to lib/.",
      upward: "'{{source}}': {{from}} imports {{room}}; dependencies point one way, bin → services → lib (DESIGN.md).",
    },
  },
  create(context) {
    const file = path.relative(ROOT, context.filename).split(path.sep).join('/');
    if (file.startsWith('..')) return {};
    const from = roomOf(file);
    const check = (node, source) => {
      if (typeof source !== 'string' || !source.startsWith('.')) return;
      const target = path.relative(ROOT, path.resolve(path.dirname(context.filename), source)).split(path.sep).join('/');
      const room = roomOf(target);
      if (room === undefined || room === from) return;
      const fromDir = path.dirname(context.filename);
      let index = path.relative(fromDir, path.join(ROOT, room)).split(path.sep).join('/');
      if (!index.startsWith('.')) index = `./${index}`;
      if (from !== undefined && from.startsWith('services/') && room.startsWith('services/')) {
        context.report({ node, messageId: 'serviceToService', data: { source, from, room } });
        return;
      }
      if (from !== undefined && layerOf(room) > layerOf(from)) {
        context.report({ node, messageId: 'upward', data: { source, from, room } });
        return;
      }
      const rest = target.slice(room.length).replace(/\.[cm]?[jt]s$/, '');
      if (rest !== '' && rest !== '/index') context.report({ node, messageId: 'deep', data: { source, room, index } });
    };
    const literal = (node) => (node && node.type === 'Literal' ? node.value : undefined);
    return {
      ImportDeclaration: (node) => check(node.source, node.source.value),
      ExportNamedDeclaration: (node) => node.source && check(node.source, node.source.value),
      ExportAllDeclaration: (node) => check(node.source, node.source.value),
      ImportExpression: (node) => check(node.source, literal(node.source)),
      TSImportType: (node) => {
        const arg = node.argument && node.argument.type === 'TSLiteralType' ? node.argument.literal : node.argument;
        check(node, literal(arg));
      },
      CallExpression: (node) => {
        if (node.callee.type === 'Identifier' && node.callee.name === 'require' && node.arguments.length === 1) check(node.arguments[0], literal(node.arguments[0]));
      },
    };
  },
};

module.exports = tseslint.config(
  { ignores: ['node_modules/', 'data/', 'data-demo/', 'coverage/', 'bench/results/', 'dashboards/', '.scratch/', '**/*.generated.*'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: { globals: { ...globals.node } },
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      // DESIGN.md: each folder has one index.ts with named exports, never `export *`.
      'no-restricted-syntax': ['error', { selector: 'ExportAllDeclaration', message: 'Use named exports (DESIGN.md: small public surfaces).' }],
    },
  },
  {
    files: ['**/*.ts', '**/*.js', '**/*.mjs'],
    plugins: { meshlens: { rules: { boundaries } } },
    rules: { 'meshlens/boundaries': 'error' },
  },
  {
    files: ['**/*.js'],
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // Type-aware rules (issue 13): TypeScript files only, through the project service (tsconfig.json); .js stays untyped.
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: __dirname } },
    rules: {
      // A promise nobody awaits loses its rejection: await it, or `void` it with a comment saying why it may run alone.
      '@typescript-eslint/no-floating-promises': 'error',
      // A union grown by one member (a new target, reason, verdict) must not fall through a switch unnoticed.
      '@typescript-eslint/switch-exhaustiveness-check': 'error',
    },
  },
);
