// Lint for the client (src/*.ts, type-aware) and its scripts and tests (*.mjs).
// Run by `npm run lint` and scripts/test-node; installed from package-lock.json.
import js from "@eslint/js";
import globals from "globals";
import tseslint from "typescript-eslint";

export default tseslint.config(
  // test/consumer/*.ts is compiled strict in a consumer project by test/package.test.mjs
  { ignores: ["dist/", "node_modules/", "src/generated/", "test/consumer/*.ts"] },
  js.configs.recommended,
  {
    files: ["**/*.mjs"],
    languageOptions: { globals: globals.node },
  },
  {
    files: ["src/**/*.ts", "test/**/*.ts"],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: {
      parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname },
    },
    rules: {
      // numbers in messages and key names (`{prefix:queue:N}`) are what we mean
      "@typescript-eslint/restrict-template-expressions": ["error", { allowNumber: true }],
    },
  },
  {
    // two findings in the enqueue path, left to the branch that owns it (repartition):
    // client.ts:110 an `as EnqueueResult` that is not needed, spec.ts:23 `String(value)`
    // of a payload field that may be an object. Remove this block once they are fixed.
    files: ["src/client.ts", "src/spec.ts"],
    rules: {
      "@typescript-eslint/no-unnecessary-type-assertion": "off",
      "@typescript-eslint/no-base-to-string": "off",
    },
  },
);
