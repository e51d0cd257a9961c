import js from '@eslint/js';
import tseslint from 'typescript-eslint';

export default tseslint.config(
  { ignores: ['**/dist/**', '**/node_modules/**', '**/*.d.ts', 'data/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    languageOptions: {
      globals: { process: 'readonly', console: 'readonly', Buffer: 'readonly', URL: 'readonly' },
    },
    rules: {
      '@typescript-eslint/no-explicit-any': 'off',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/consistent-type-imports': 'error',
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'Use the injected Random.' },
        { object: 'Date', property: 'now', message: 'Use the injected Clock (core/runtime is exempt).' },
      ],
    },
  },
  {
    files: [
      '**/test/**',
      '**/bench/**',
      'packages/core/src/runtime/system-*.ts',
      'packages/server/src/**',
      'packages/client/src/**',
    ],
    rules: { 'no-restricted-properties': 'off' },
  },
  {
    // The dashboard's script runs in the browser.
    files: ['packages/server/ui/**/*.js'],
    languageOptions: {
      sourceType: 'script',
      globals: { document: 'readonly', fetch: 'readonly', setTimeout: 'readonly', Date: 'readonly' },
    },
    rules: { 'no-restricted-properties': 'off' },
  },
);
