// Lint and format as the Effect monorepo does: typescript-eslint plus dprint through @effect/eslint-plugin.
import * as effectEslint from "@effect/eslint-plugin"
import tseslint from "typescript-eslint"

export default [
  {
    ignores: [
      "dist/**",
      "node_modules/**",
      "bench/node_modules/**",
      "bench/results/**",
      "**/*.d.ts",
      ".ci/readme-blocks/**"
    ]
  },
  ...tseslint.configs.recommended,
  ...effectEslint.configs.dprint,
  {
    rules: {
      "@effect/dprint": ["error", {
        config: {
          indentWidth: 2,
          lineWidth: 120,
          semiColons: "asi",
          quoteStyle: "alwaysDouble",
          trailingCommas: "never",
          operatorPosition: "maintain",
          "arrowFunction.useParentheses": "force"
        }
      }],
      "@typescript-eslint/array-type": ["error", { default: "generic", readonly: "generic" }],
      "@typescript-eslint/consistent-type-imports": "error",
      "@typescript-eslint/no-explicit-any": "off",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "@typescript-eslint/no-namespace": "off",
      "@typescript-eslint/no-empty-object-type": "off"
    }
  },
  {
    files: ["bench/**/*.mjs", "scratchpad/**/*.mjs"],
    languageOptions: { globals: { process: "readonly", console: "readonly", fetch: "readonly" } }
  }
]
