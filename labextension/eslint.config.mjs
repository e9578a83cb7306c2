// ESLint flat config: typescript-eslint's recommended rules on src/ and test/,
// with formatting left to prettier (`npm run lint` runs both).
import js from '@eslint/js';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  {
    ignores: [
      'lib/',
      'node_modules/',
      'coverage/',
      'src/openapi.ts',
      '*.tsbuildinfo'
    ]
  },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['src/**/*.ts', 'test/**/*.ts'],
    languageOptions: {
      globals: { ...globals.browser }
    },
    rules: {
      '@typescript-eslint/no-namespace': 'off',
      '@typescript-eslint/no-unused-vars': [
        'error',
        { args: 'none', caughtErrors: 'none' }
      ],
      eqeqeq: ['error', 'smart'],
      'no-console': ['error', { allow: ['warn', 'error'] }],
      curly: ['error', 'all']
    }
  },
  {
    files: ['test/**/*.ts'],
    languageOptions: { globals: { ...globals.jest, ...globals.node } }
  },
  {
    files: ['scripts/**/*.mjs', '*.mjs', '*.js', 'test/**/*.js'],
    languageOptions: { globals: { ...globals.node } }
  },
  {
    files: ['*.js', 'test/**/*.js'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' }
  }
);
